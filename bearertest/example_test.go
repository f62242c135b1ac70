package bearertest_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"

	"golang.org/x/oauth2"

	"github.com/seamlessauth/bearer/bearertest"
)

// A client built with x/oauth2 logs in, calls the API, and refreshes once
// its access token has expired on the server's clock.
func Example() {
	var ahead atomic.Int64 // how far the server's clock runs ahead of time.Now
	srv := bearertest.NewServer(bearertest.Options{
		AccessTTL: time.Minute,
		Rotate:    true,
		Now:       func() time.Time { return time.Now().Add(time.Duration(ahead.Load())) },
	})
	defer srv.Close()

	tok := srv.Issue() // log in
	ctx := context.WithValue(context.Background(), oauth2.HTTPClient, srv.Client())

	call := func(tok *oauth2.Token) int {
		client := srv.Config().Client(ctx, tok)
		resp, err := client.Get(srv.APIURL + "/things")
		if err != nil {
			fmt.Println("error:", err)
			return 0
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	fmt.Println("first call:", call(tok))

	ahead.Store(int64(time.Hour)) // the server's clock moves on; the token is dead
	fmt.Println("stale token:", call(tok))

	tok.Expiry = time.Now().Add(-time.Second) // tell x/oauth2 it expired too
	fmt.Println("after refresh:", call(tok))

	st := srv.Stats()
	fmt.Println("refreshes:", st.Refreshes, "401s:", st.APIUnauthorized)
	// Output:
	// first call: 200
	// stale token: 401
	// after refresh: 200
	// refreshes: 1 401s: 1
}

// Sdk shows an SDK client type built on a bearer Transport: the SDK has its
// own constructor, options and error (ErrLoginRequired), and keeps the
// Transport to itself: its users call the SDK's Login, Logout and Close,
// which delegate to the Transport, and never see the Transport's methods.
// The SDK is in client.go; this file uses it.
//
//	go run ./examples/sdk
//
// It starts an OAuth2 server and API in this process (bearertest, on
// 127.0.0.1). No token is printed.
package main

import (
	"context"
	"errors"
	"fmt"
	"log"
	"time"

	"github.com/seamlessauth/bearer"
	"github.com/seamlessauth/bearer/bearertest"
)

func main() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	srv := bearertest.NewServer(bearertest.Options{Rotate: true, ReuseDetection: true})
	defer srv.Close()

	client, err := NewClient(srv.URL, srv.Config(),
		WithTimeout(10*time.Second),
		WithOnLogout(func(_ context.Context, err error) {
			fmt.Println("  OnLogout: the session is over:", err)
		}),
	)
	if err != nil {
		log.Fatal(err)
	}
	defer client.Close()

	show := func(what string) {
		item, err := client.Item(ctx, "42")
		switch {
		case errors.Is(err, ErrLoginRequired) && errors.Is(err, bearer.ErrLoggedOut):
			fmt.Printf("%s: login required (the session ended)\n", what)
		case errors.Is(err, ErrLoginRequired):
			fmt.Printf("%s: login required (no token yet)\n", what)
		case err != nil:
			log.Fatalf("%s: %v", what, err)
		default:
			fmt.Printf("%s: item %s from %s\n", what, item.ID, item.Path)
		}
	}

	show("before logging in")
	if err := client.Login(ctx, srv.Issue()); err != nil { // the user logs in
		log.Fatal(err)
	}
	show("logged in")
	srv.RevokeAccessTokens()
	show("after the server revoked the access token")
	srv.RevokeRefreshTokens()
	show("after the server revoked the refresh token")
	show("and again")
	if err := client.Login(ctx, srv.Issue()); err != nil { // logs in again
		log.Fatal(err)
	}
	show("logged in again")
	if err := client.Logout(ctx); err != nil { // the user logs out
		log.Fatal(err)
	}
	show("logged out")

	st := srv.Stats()
	fmt.Printf("server: refreshes %d, refused %d, reuse detections %d\n", st.Refreshes, st.RefreshFailures, st.ReuseDetections)
}

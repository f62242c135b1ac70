// Oauth2 logs in with the authorization code flow and PKCE through
// golang.org/x/oauth2, then hands the token to a bearer Transport that
// refreshes it with bearer.OAuth2(cfg): once before it expires, and once
// when the server revokes it.
//
//	go run ./examples/oauth2
//	go run ./examples/oauth2 -dpop
//
// With -dpop the server binds the tokens to a DPoP key (RFC 9449) and
// requires its nonces: the login's token requests carry proofs of a key
// made here, and so do the Transport's requests and refreshes.
//
// It starts an OAuth2 server and API in this process (bearertest, on
// 127.0.0.1), whose authorization page approves at once;
// bearertest.Server.Authorize plays the browser. No token is printed.
package main

import (
	"context"
	"crypto/rand"
	"flag"
	"fmt"
	"log"
	"net/http"
	"time"

	"golang.org/x/oauth2"

	"github.com/seamlessauth/bearer"
	"github.com/seamlessauth/bearer/bearertest"
	"github.com/seamlessauth/bearer/dpop"
)

func main() {
	withDPoP := flag.Bool("dpop", false, "bind the tokens to a DPoP key")
	flag.Parse()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	srv := bearertest.NewServer(bearertest.Options{AccessTTL: 2 * time.Second, Rotate: true, ReuseDetection: true,
		DPoP: *withDPoP, DPoPNonce: *withDPoP})
	defer srv.Close()
	cfg := srv.Config() // client ID and secret, authorization and token URLs

	// With DPoP, the login's token requests go through a client that signs
	// a proof of the key for each of them.
	var key *dpop.Key
	if *withDPoP {
		var err error
		if key, err = dpop.GenerateKey(); err != nil {
			log.Fatal(err)
		}
		ctx = context.WithValue(ctx, oauth2.HTTPClient, key.Client(nil))
		fmt.Printf("DPoP key %s\n", key)
	}

	// 1. Log in: send the user to the authorization page, with a PKCE
	// challenge and a state, and exchange the code that comes back.
	verifier := oauth2.GenerateVerifier()
	state := rand.Text()
	authURL := cfg.AuthCodeURL(state, oauth2.S256ChallengeOption(verifier))
	code, gotState, err := srv.Authorize(ctx, authURL) // the browser's part
	if err != nil {
		log.Fatal(err)
	}
	if gotState != state {
		log.Fatal("the state that came back is not the one sent")
	}
	tok, err := cfg.Exchange(ctx, code, oauth2.VerifierOption(verifier))
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("logged in: a %s token for %ds, with a refresh token: %t\n",
		tok.Type(), tok.ExpiresIn, tok.RefreshToken != "")

	// 2. From now on the Transport keeps the session alive.
	tr, err := bearer.New(bearer.Config{
		Refresher: bearer.OAuth2(cfg),
		DPoP:      key, // nil without -dpop
		OnRefresh: func(_ context.Context, ev bearer.RefreshEvent) {
			if ev.Err != nil {
				fmt.Printf("  refresh failed (%s): %v\n", ev.Reason, ev.Err)
				return
			}
			fmt.Printf("  the Transport refreshed the token (%s)\n", ev.Reason)
		},
	})
	if err != nil {
		log.Fatal(err)
	}
	defer tr.CloseIdleConnections()
	if err := tr.SetToken(ctx, tok); err != nil {
		log.Fatal(err)
	}
	client := tr.Client()

	call(ctx, client, srv.APIURL+"/profile", "first call")

	// The default leeway is 30s, but never more than half the token's
	// lifetime: this 2s token is refreshed once it has 1s left.
	time.Sleep(time.Until(tok.Expiry.Add(-time.Second / 2)))
	call(ctx, client, srv.APIURL+"/profile", "0.5s before expiry")

	srv.RevokeAccessTokens()
	call(ctx, client, srv.APIURL+"/profile", "after the server revoked the access token")

	st := srv.Stats()
	fmt.Printf("server: refreshes %d, 401s %d, reuse detections %d\n",
		st.Refreshes, st.APIUnauthorized, st.ReuseDetections)
	if *withDPoP {
		fmt.Printf("server: DPoP proofs accepted %d, refused %d, nonce requests %d\n",
			st.DPoPProofs, st.DPoPRejected, st.DPoPNonceChallenges)
	}
}

func call(ctx context.Context, client *http.Client, url, what string) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		log.Fatal(err)
	}
	resp, err := client.Do(req)
	if err != nil {
		log.Fatalf("%s: %v", what, err)
	}
	resp.Body.Close()
	fmt.Printf("%s: %s\n", what, resp.Status)
}

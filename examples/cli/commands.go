package main

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"golang.org/x/oauth2"

	"github.com/seamlessauth/bearer"
	"github.com/seamlessauth/bearer/bearertest"
	"github.com/seamlessauth/bearer/store"
)

// command runs one command of the tool in this process and returns its
// exit status.
func command(server, path string, args []string) int {
	if len(args) != 1 {
		fmt.Println("usage: cli [-file path] -server URL login|whoami|logout")
		return 2
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	st, err := store.NewFile(path)
	if err != nil {
		fmt.Println(err)
		return 1
	}
	cfg := &oauth2.Config{
		ClientID:     bearertest.DefaultClientID,
		ClientSecret: bearertest.DefaultClientSecret,
		Endpoint:     oauth2.Endpoint{AuthURL: server + "/authorize", TokenURL: server + "/token", AuthStyle: oauth2.AuthStyleInHeader},
		RedirectURL:  server + "/callback",
	}
	tr, err := bearer.New(bearer.Config{
		Refresher: bearer.OAuth2(cfg),
		Store:     st,
		OnRefresh: func(_ context.Context, ev bearer.RefreshEvent) {
			if ev.Err == nil {
				fmt.Printf("  (the access token was %s: refreshed, and the new pair saved)\n", ev.Reason)
			}
		},
		OnLogout: func(context.Context, error) { fmt.Println("  (the saved session was refused by the server)") },
	})
	if err != nil {
		fmt.Println(err)
		return 1
	}
	defer tr.CloseIdleConnections()

	switch args[0] {
	case "login":
		err = login(ctx, tr, cfg)
	case "whoami":
		err = whoami(ctx, tr, server+"/api/me")
	case "logout":
		err = tr.Logout(ctx)
		if err == nil {
			fmt.Println("  logged out; the token file is removed")
		}
	default:
		err = fmt.Errorf("unknown command %q", args[0])
	}
	if err != nil {
		fmt.Println("  error:", err)
		return 1
	}
	return 0
}

// login runs the authorization code flow with PKCE and saves the token.
func login(ctx context.Context, tr *bearer.Transport, cfg *oauth2.Config) error {
	verifier, state := oauth2.GenerateVerifier(), rand.Text()
	code, err := browse(ctx, cfg.AuthCodeURL(state, oauth2.S256ChallengeOption(verifier)), state)
	if err != nil {
		return err
	}
	tok, err := cfg.Exchange(ctx, code, oauth2.VerifierOption(verifier))
	if err != nil {
		return err
	}
	if err := tr.SetToken(ctx, tok); err != nil {
		return err
	}
	fmt.Println("  logged in; the token pair is saved")
	return nil
}

// browse plays the browser: a real tool opens authURL in one and listens on
// the redirect URI; the test server approves at once, so reading the
// redirect is enough.
func browse(ctx context.Context, authURL, state string) (code string, err error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, authURL, nil)
	if err != nil {
		return "", err
	}
	c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := c.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, resp.Body)
	loc, err := resp.Location()
	if err != nil {
		return "", fmt.Errorf("the authorization page did not redirect: %s", resp.Status)
	}
	q := loc.Query()
	if q.Get("state") != state || q.Get("code") == "" {
		return "", errors.New("the authorization redirect has no code or the wrong state")
	}
	return q.Get("code"), nil
}

// whoami calls the API with the saved token.
func whoami(ctx context.Context, tr *bearer.Transport, url string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := tr.Client().Do(req)
	switch {
	case errors.Is(err, bearer.ErrNoToken), errors.Is(err, bearer.ErrLoggedOut):
		fmt.Println("  not logged in: run cli login")
		return nil
	case err != nil:
		return err
	}
	resp.Body.Close()
	fmt.Printf("  GET /api/me: %s\n", resp.Status)
	return nil
}

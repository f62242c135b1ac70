// Backend is an HTTP server that calls an API on behalf of each of its
// users through one bearer.Pool: each user logs in once (the authorization
// code flow with PKCE), their token pair goes to a file of their own, and
// every later API call for them names them with bearer.WithIdentity. The
// pool refreshes each user's token on its own, once however many of their
// calls fail together, and a user who is logged out does not stop the
// others.
//
//	go run ./examples/backend
//
// It starts an OAuth2 server and API in this process (bearertest, on
// 127.0.0.1), whose authorization page approves at once, and the backend on
// another loopback port, then plays three users' browsers. A real backend
// takes the user from its session cookie, not from a query parameter. No
// token is printed.
package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"

	"golang.org/x/oauth2"

	"github.com/seamlessauth/bearer"
	"github.com/seamlessauth/bearer/bearertest"
	"github.com/seamlessauth/bearer/store"
)

func main() {
	auth := bearertest.NewServer(bearertest.Options{Rotate: true, ReuseDetection: true})
	defer auth.Close()
	dir, err := os.MkdirTemp("", "bearer-backend-")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)

	cfg := auth.Config()
	pool, err := bearer.NewPool(bearer.PoolConfig{
		Transport: bearer.Config{Refresher: bearer.OAuth2(cfg)},
		// One token file per user; the name never holds the user's id as is.
		Store: func(id string) (store.Store, error) {
			return store.NewFile(filepath.Join(dir, hex.EncodeToString([]byte(id))+".json"))
		},
		OnLogout: func(_ context.Context, id string, err error) {
			fmt.Printf("  %s must log in again: %v\n", id, err)
		},
	})
	if err != nil {
		log.Fatal(err)
	}
	backend := httptest.NewServer(handler(pool, cfg, auth))
	defer backend.Close()

	users := []string{"alice", "bob", "carol"}
	fmt.Println("log in:")
	for _, u := range users {
		visit(backend.URL + "/login?user=" + u)
	}
	fmt.Println("call the API for each:")
	for _, u := range users {
		visit(backend.URL + "/things?user=" + u)
	}
	fmt.Println("the API revokes every access token; each user's next call refreshes theirs:")
	auth.RevokeAccessTokens()
	for _, u := range users {
		visit(backend.URL + "/things?user=" + u)
	}
	fmt.Println("bob logs out; the others go on:")
	visit(backend.URL + "/logout?user=bob")
	for _, u := range users {
		visit(backend.URL + "/things?user=" + u)
	}
	st := auth.Stats()
	fmt.Printf("token endpoint: %d refreshes, %d reuse detections\n", st.Refreshes, st.ReuseDetections)
}

// handler is the backend: /login logs a user in, /things calls the API for
// them, /logout logs them out.
func handler(pool *bearer.Pool, cfg *oauth2.Config, auth *bearertest.Server) http.Handler {
	api := pool.Client()
	mux := http.NewServeMux()
	mux.HandleFunc("/login", func(w http.ResponseWriter, r *http.Request) {
		ctx, user := r.Context(), r.URL.Query().Get("user")
		verifier, state := oauth2.GenerateVerifier(), rand.Text()
		code, _, err := auth.Authorize(ctx, cfg.AuthCodeURL(state, oauth2.S256ChallengeOption(verifier))) // the browser's part
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		tok, err := cfg.Exchange(ctx, code, oauth2.VerifierOption(verifier))
		if err == nil {
			err = pool.SetToken(ctx, user, tok)
		}
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		fmt.Fprintf(w, "%s logged in", user)
	})
	mux.HandleFunc("/things", func(w http.ResponseWriter, r *http.Request) {
		user := r.URL.Query().Get("user")
		req, err := http.NewRequestWithContext(bearer.WithIdentity(r.Context(), user), http.MethodGet, auth.APIURL+"/things", nil)
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		resp, err := api.Do(req)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		defer resp.Body.Close()
		fmt.Fprintf(w, "API for %s: %s", user, resp.Status)
	})
	mux.HandleFunc("/logout", func(w http.ResponseWriter, r *http.Request) {
		user := r.URL.Query().Get("user")
		if err := pool.Logout(r.Context(), user); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		fmt.Fprintf(w, "%s logged out", user)
	})
	return mux
}

// visit plays a browser: it gets url and prints the answer.
func visit(url string) {
	resp, err := http.Get(url)
	if err != nil {
		log.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	fmt.Printf("  %s", body)
	if len(body) == 0 || body[len(body)-1] != '\n' {
		fmt.Println()
	}
}

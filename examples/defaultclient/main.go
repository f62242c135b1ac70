// Defaultclient puts a bearer Transport under http.DefaultClient, so that
// code which calls http.Get, or a library that uses the default client,
// carries the access token without knowing about it. Config.Hosts keeps
// the token for the API's host: a request to any other host goes out
// without it.
//
//	go run ./examples/defaultclient
//
// It starts an OAuth2 server and API in this process (bearertest, on
// 127.0.0.1) and a second server that plays "some other site". No token is
// printed.
package main

import (
	"context"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"

	"github.com/seamlessauth/bearer"
	"github.com/seamlessauth/bearer/bearertest"
)

func main() {
	srv := bearertest.NewServer(bearertest.Options{Rotate: true, ReuseDetection: true})
	defer srv.Close()
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "" {
			fmt.Fprint(w, "other site: received an Authorization header")
			return
		}
		fmt.Fprint(w, "other site: no Authorization header")
	}))
	defer other.Close()

	api, err := url.Parse(srv.URL)
	if err != nil {
		log.Fatal(err)
	}
	tr, err := bearer.New(bearer.Config{
		Refresher: bearer.OAuth2(srv.Config()),
		Base:      http.DefaultTransport,
		// Every user of http.DefaultClient now goes through tr: name the
		// hosts that may see the token. Without Hosts, each request would
		// get it for its own host, whatever that host is.
		Hosts: []string{api.Host},
	})
	if err != nil {
		log.Fatal(err)
	}
	http.DefaultClient.Transport = tr

	if err := tr.SetToken(context.Background(), srv.Issue()); err != nil { // logged in
		log.Fatal(err)
	}

	fmt.Println("http.Get(API):", get(srv.APIURL+"/me"))
	srv.RevokeAccessTokens()
	fmt.Println("http.Get(API) after the server revoked the access token:", get(srv.APIURL+"/me"))
	fmt.Println("http.Get(other site):", get(other.URL))

	st := srv.Stats()
	fmt.Printf("server: refreshes %d, 401s %d, reuse detections %d\n",
		st.Refreshes, st.APIUnauthorized, st.ReuseDetections)
}

// get sends a GET request with http.Get, that is, through
// http.DefaultClient, and returns the status and the start of the body.
func get(url string) string {
	resp, err := http.Get(url)
	if err != nil {
		log.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 200))
	if err != nil {
		log.Fatal(err)
	}
	return fmt.Sprintf("%s %s", resp.Status, strings.TrimSpace(string(body)))
}

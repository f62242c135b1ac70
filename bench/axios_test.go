package bench

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sync"

	"golang.org/x/oauth2"
)

// axiosPort is a Go port of the refresh interceptor that web clients write
// for axios, kept faithful on purpose, flaws included:
//
//	request interceptor:  Authorization = "Bearer " + storage.accessToken
//	response interceptor: on a 401 not yet retried, POST /refresh with
//	                      storage.refreshToken, store the answer, retry once;
//	                      if the refresh fails, clear storage and reject.
//
// Nothing is collapsed: every request that gets a 401 refreshes on its own,
// with whatever refresh token storage holds at that moment. The mutex stands
// in for localStorage; it is held only to read or write it.
type axiosPort struct {
	base       http.RoundTripper
	client     *http.Client // sends POST /refresh, outside the interceptor
	refreshURL string

	mu      sync.RWMutex
	access  string
	refresh string
}

func newAxiosPort(base http.RoundTripper, client *http.Client, refreshURL string, tok *oauth2.Token) *axiosPort {
	return &axiosPort{base: base, client: client, refreshURL: refreshURL,
		access: tok.AccessToken, refresh: tok.RefreshToken}
}

func (a *axiosPort) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := a.base.RoundTrip(a.intercept(req))
	if err != nil || resp.StatusCode != http.StatusUnauthorized {
		return resp, err
	}
	if req.Body != nil && req.Body != http.NoBody && req.GetBody == nil {
		return resp, nil // axios could replay its data; this body cannot be
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if err := a.refreshTokens(req); err != nil {
		a.store("", "")
		return nil, err
	}
	retry := a.intercept(req)
	if req.GetBody != nil {
		if retry.Body, err = req.GetBody(); err != nil {
			return nil, fmt.Errorf("bench: axios: replaying the body: %w", err)
		}
	}
	return a.base.RoundTrip(retry)
}

// intercept is the request interceptor: a copy of req with the stored token.
func (a *axiosPort) intercept(req *http.Request) *http.Request {
	a.mu.RLock()
	access := a.access
	a.mu.RUnlock()
	r := new(http.Request)
	*r = *req
	r.Header = req.Header.Clone()
	if r.Header == nil {
		r.Header = make(http.Header, 1)
	}
	if access != "" {
		r.Header.Set("Authorization", "Bearer "+access)
	}
	return r
}

// refreshTokens posts the stored refresh token to the refresh endpoint and
// stores what comes back.
func (a *axiosPort) refreshTokens(orig *http.Request) error {
	a.mu.RLock()
	rt := a.refresh
	a.mu.RUnlock()
	body, err := json.Marshal(struct {
		Token string `json:"token"`
	}{rt})
	if err != nil {
		return fmt.Errorf("bench: axios: %w", err)
	}
	req, err := http.NewRequestWithContext(orig.Context(), http.MethodPost, a.refreshURL, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("bench: axios: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := a.client.Do(req)
	if err != nil {
		return fmt.Errorf("bench: axios: refresh: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		io.Copy(io.Discard, resp.Body)
		return fmt.Errorf("bench: axios: refresh answered %d", resp.StatusCode)
	}
	var out struct {
		AccessToken  string `json:"accessToken"`
		RefreshToken string `json:"refreshToken"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		return fmt.Errorf("bench: axios: reading the refresh answer: %w", err)
	}
	a.mu.Lock()
	a.access = out.AccessToken
	if out.RefreshToken != "" {
		a.refresh = out.RefreshToken
	}
	a.mu.Unlock()
	return nil
}

func (a *axiosPort) store(access, refresh string) {
	a.mu.Lock()
	a.access, a.refresh = access, refresh
	a.mu.Unlock()
}

// CloseIdleConnections closes the idle connections of the base and of the
// refresh client.
func (a *axiosPort) CloseIdleConnections() {
	closeIdle(a.base)
	a.client.CloseIdleConnections()
}

package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// axiosClient is a port of the refresh interceptor that web apps write for
// axios, kept faithful on purpose:
//
//	api.interceptors.request.use((config) => {
//	  config.headers.Authorization = `Bearer ${localStorage.getItem("accessToken")}`;
//	  return config;
//	});
//	api.interceptors.response.use((response) => response, async (error) => {
//	  const original = error.config;
//	  if (error.response?.status === 401 && !original._retry) {
//	    original._retry = true;
//	    try {
//	      const { data } = await axios.post("/refresh", { token: localStorage.getItem("refreshToken") });
//	      localStorage.setItem("accessToken", data.accessToken);
//	      localStorage.setItem("refreshToken", data.refreshToken);
//	      return api(original);
//	    } catch (refreshError) {
//	      logout(); // clear the tokens and go to the login page
//	      return Promise.reject(refreshError);
//	    }
//	  }
//	  return Promise.reject(error);
//	});
//
// Each request that gets a 401 calls the refresh endpoint itself, with the
// refresh token it finds in storage at that moment, stores what comes back
// and is sent once more: nothing joins the refreshes of concurrent requests.
// The mutex only keeps the Go port free of data races (JavaScript runs one
// callback at a time); it is never held during a request.
type axiosClient struct {
	base       http.RoundTripper
	refreshURL string
	onRefresh  func(asked, expiry time.Time) // a token asked for at asked was stored
	onLogout   func(err error)               // logout() was called

	mu      sync.Mutex
	access  string // localStorage.accessToken
	refresh string // localStorage.refreshToken

	loggedOut atomic.Bool // the app is on its login page and sends nothing more
	retries   atomic.Int64
}

// Do is the axios instance: request interceptor, send, response interceptor.
func (c *axiosClient) Do(req *http.Request) (*http.Response, error) {
	resp, err := c.send(req)
	if err != nil || resp.StatusCode != http.StatusUnauthorized {
		return resp, err
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()

	c.mu.Lock()
	refresh := c.refresh
	c.mu.Unlock()
	asked := time.Now()
	access, newRefresh, expiry, err := c.refreshWith(req, refresh)
	if err != nil {
		c.logout(err)
		return nil, err
	}
	c.mu.Lock()
	c.access, c.refresh = access, newRefresh
	c.mu.Unlock()
	c.onRefresh(asked, expiry)
	markRetried(req.Context())
	c.retries.Add(1)
	return c.send(req) // api(original): the request interceptor runs again
}

// send is the request interceptor and the adapter: it attaches the stored
// access token to a copy of req.
func (c *axiosClient) send(req *http.Request) (*http.Response, error) {
	c.mu.Lock()
	access := c.access
	c.mu.Unlock()
	r := req.Clone(req.Context())
	r.Header.Set("Authorization", "Bearer "+access)
	return c.base.RoundTrip(r)
}

// refreshWith is axios.post("/refresh", {token}).
func (c *axiosClient) refreshWith(req *http.Request, refresh string) (access, newRefresh string, expiry time.Time, err error) {
	body, _ := json.Marshal(map[string]string{"token": refresh})
	r, err := http.NewRequestWithContext(req.Context(), http.MethodPost, c.refreshURL, bytes.NewReader(body))
	if err != nil {
		return "", "", time.Time{}, err
	}
	r.Header.Set("Content-Type", "application/json")
	resp, err := c.base.RoundTrip(r)
	if err != nil {
		return "", "", time.Time{}, fmt.Errorf("axios: refresh: %w", err)
	}
	defer resp.Body.Close()
	var answer struct {
		AccessToken  string `json:"accessToken"`
		RefreshToken string `json:"refreshToken"`
		ExpiresIn    int64  `json:"expiresIn"`
		Error        string `json:"error"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&answer); err != nil {
		return "", "", time.Time{}, fmt.Errorf("axios: refresh answered %d with no JSON", resp.StatusCode)
	}
	if resp.StatusCode != http.StatusOK || answer.AccessToken == "" {
		return "", "", time.Time{}, fmt.Errorf("axios: refresh answered %d %s", resp.StatusCode, answer.Error)
	}
	return answer.AccessToken, answer.RefreshToken, time.Now().Add(time.Duration(answer.ExpiresIn) * time.Second), nil
}

// logout clears the tokens and leaves for the login page. Every request
// whose refresh failed calls it.
func (c *axiosClient) logout(err error) {
	c.mu.Lock()
	c.access, c.refresh = "", ""
	c.mu.Unlock()
	c.loggedOut.Store(true)
	c.onLogout(err)
}

// runNaive drives the axios port through the same scenario as the bearer
// run. Once it has logged out, its workers stop: the app is on its login
// page.
func runNaive(o options, d *display) *result {
	s := newScenario(o)
	defer s.close()

	var logouts atomic.Int64
	var endedAt time.Duration
	start := time.Now()
	c := &axiosClient{
		base:       s.base,
		refreshURL: s.srv.RefreshURL,
		onRefresh:  func(asked, expiry time.Time) { s.tl.replaced(asked, expiry, time.Now()) },
		onLogout: func(err error) {
			if logouts.Add(1) == 1 {
				endedAt = time.Since(start)
				d.event("logout(): %v; the user is sent to the login page", err)
			}
		},
	}
	born := time.Now()
	tok := s.srv.Issue() // the user logs in
	c.access, c.refresh = tok.AccessToken, tok.RefreshToken
	s.tl.start(born, tok.Expiry)
	d.printf("%d workers for %v against %s; access tokens live %v, refresh tokens rotate, reuse ends the session\n",
		o.workers, o.duration, s.srv.URL, o.ttl)

	t := s.run(o, d, c, c.loggedOut.Load)
	res := newResult("axios interceptor", s, t, time.Since(start), c.retries.Load(), logouts.Load())
	if res.logouts > 0 {
		res.endedEarly = fmt.Sprintf("logged out after %.1fs", endedAt.Seconds())
	}
	return res
}

// Package axios is a Go port of the refresh interceptor that web clients
// write for axios, kept faithful on purpose, flaws included. It is what
// bearer is measured against (package bench) and shown beside (the demo),
// never a way to do it:
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
// Nothing is collapsed: every request that gets a 401 calls the refresh
// endpoint itself, with the refresh token stored at that moment, stores
// what comes back and is sent once more; every failed refresh clears the
// tokens and logs out.
package axios

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/oauth2"
)

// Interceptor is an axios instance with both interceptors, as an
// [http.RoundTripper]. Set its fields, call [Interceptor.Login], then send.
// The mutex stands in for localStorage and only keeps the Go port free of
// data races (JavaScript runs one callback at a time); it is never held
// during a request.
type Interceptor struct {
	Base          http.RoundTripper // sends the API requests
	RefreshClient *http.Client      // sends POST /refresh, outside the interceptors
	RefreshURL    string            // the JSON refresh endpoint: {"token"} → {"accessToken", "refreshToken"?, "expiresIn"}

	// Optional hooks, called on the goroutine of the request.
	OnRefresh func(asked, expiry time.Time) // a token asked for at asked was stored
	OnRetry   func(req *http.Request)       // req is sent once more: api(original)
	OnLogout  func(err error)               // logout() ran after a failed refresh

	mu      sync.RWMutex
	access  string // localStorage.accessToken
	refresh string // localStorage.refreshToken

	loggedOut atomic.Bool // the app is on its login page
}

// Login stores the token pair of a login.
func (c *Interceptor) Login(tok *oauth2.Token) {
	c.store(tok.AccessToken, tok.RefreshToken)
	c.loggedOut.Store(false)
}

// Tokens returns the stored access and refresh tokens.
func (c *Interceptor) Tokens() (access, refresh string) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.access, c.refresh
}

// LoggedOut reports whether a failed refresh has logged the user out.
func (c *Interceptor) LoggedOut() bool { return c.loggedOut.Load() }

// RoundTrip is the request interceptor, the send, and the response
// interceptor.
func (c *Interceptor) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := c.Base.RoundTrip(c.intercept(req))
	if err != nil || resp.StatusCode != http.StatusUnauthorized {
		return resp, err
	}
	if req.Body != nil && req.Body != http.NoBody && req.GetBody == nil {
		return resp, nil // axios could replay its data; this body cannot be
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if err := c.refreshTokens(req.Context()); err != nil {
		c.logout(err)
		return nil, err
	}
	retry := c.intercept(req) // api(original): the request interceptor runs again
	if req.GetBody != nil {
		if retry.Body, err = req.GetBody(); err != nil {
			return nil, fmt.Errorf("axios: replaying the body: %w", err)
		}
	}
	if c.OnRetry != nil {
		c.OnRetry(retry)
	}
	return c.Base.RoundTrip(retry)
}

// intercept is the request interceptor: a copy of req with the stored
// access token.
func (c *Interceptor) intercept(req *http.Request) *http.Request {
	c.mu.RLock()
	access := c.access
	c.mu.RUnlock()
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

// refreshTokens is axios.post("/refresh", {token}) with the stored refresh
// token, then storing the answer.
func (c *Interceptor) refreshTokens(ctx context.Context) error {
	_, rt := c.Tokens()
	asked := time.Now()
	body, err := json.Marshal(struct {
		Token string `json:"token"`
	}{rt})
	if err != nil {
		return fmt.Errorf("axios: %w", err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.RefreshURL, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("axios: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.RefreshClient.Do(req)
	if err != nil {
		return fmt.Errorf("axios: refresh: %w", err)
	}
	defer resp.Body.Close()
	var answer struct {
		AccessToken  string `json:"accessToken"`
		RefreshToken string `json:"refreshToken"`
		ExpiresIn    int64  `json:"expiresIn"`
		Error        string `json:"error"`
	}
	err = json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&answer)
	io.Copy(io.Discard, resp.Body)
	switch {
	case err != nil:
		return fmt.Errorf("axios: refresh answered %d with no JSON", resp.StatusCode)
	case resp.StatusCode != http.StatusOK || answer.AccessToken == "":
		return fmt.Errorf("axios: refresh answered %d %s", resp.StatusCode, answer.Error)
	}
	c.mu.Lock()
	c.access = answer.AccessToken
	if answer.RefreshToken != "" { // else the server kept it: no rotation
		c.refresh = answer.RefreshToken
	}
	c.mu.Unlock()
	if c.OnRefresh != nil {
		c.OnRefresh(asked, time.Now().Add(time.Duration(answer.ExpiresIn)*time.Second))
	}
	return nil
}

// logout clears the tokens and leaves for the login page. Every request
// whose refresh failed calls it.
func (c *Interceptor) logout(err error) {
	c.store("", "")
	c.loggedOut.Store(true)
	if c.OnLogout != nil {
		c.OnLogout(err)
	}
}

func (c *Interceptor) store(access, refresh string) {
	c.mu.Lock()
	c.access, c.refresh = access, refresh
	c.mu.Unlock()
}

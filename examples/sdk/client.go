package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"time"

	"golang.org/x/oauth2"

	"github.com/seamlessauth/bearer"
	"github.com/seamlessauth/bearer/store"
)

// This file is what an SDK for an "items" API would ship: its own client
// type and options, with a bearer Transport inside.

// ErrLoginRequired is returned when the user must log in (again): there is
// no token, or the session was ended by the server.
var ErrLoginRequired = errors.New("items: login required")

// Client is the SDK's client. It is safe for concurrent use.
//
// It holds the bearer Transport in an unexported field and delegates to it
// from methods of its own (Login, Logout, Close) rather than embedding it:
// an embedded *bearer.Transport would make RoundTrip, Client, Token,
// GoString and every method bearer adds later part of the SDK's API, which
// its users would call and the SDK could then never change or remove.
type Client struct {
	tr      *bearer.Transport
	http    *http.Client
	baseURL *url.URL
}

// Option configures a [Client].
type Option func(*settings)

type settings struct {
	store    store.Store
	base     http.RoundTripper
	onLogout func(ctx context.Context, err error)
	timeout  time.Duration
}

// WithStore keeps the token pair in s instead of in memory.
func WithStore(s store.Store) Option { return func(o *settings) { o.store = s } }

// WithTransport sends the requests through rt instead of http.DefaultTransport.
func WithTransport(rt http.RoundTripper) Option { return func(o *settings) { o.base = rt } }

// WithOnLogout calls fn once when the server ends the session.
func WithOnLogout(fn func(ctx context.Context, err error)) Option {
	return func(o *settings) { o.onLogout = fn }
}

// WithTimeout bounds each call, its refresh included. The default is 30s.
func WithTimeout(d time.Duration) Option { return func(o *settings) { o.timeout = d } }

// NewClient returns a client of the API at baseURL that logs in with cfg.
// Only the API's host ever gets the token.
func NewClient(baseURL string, cfg *oauth2.Config, opts ...Option) (*Client, error) {
	u, err := url.Parse(baseURL)
	if err != nil || u.Host == "" {
		return nil, fmt.Errorf("items: bad base URL %q", baseURL)
	}
	o := settings{timeout: 30 * time.Second}
	for _, opt := range opts {
		opt(&o)
	}
	tr, err := bearer.New(bearer.Config{
		Refresher: bearer.OAuth2(cfg),
		Store:     o.store,
		Base:      o.base,
		OnLogout:  o.onLogout,
		Hosts:     []string{u.Host},
	})
	if err != nil {
		return nil, fmt.Errorf("items: %w", err)
	}
	return &Client{tr: tr, http: &http.Client{Transport: tr, Timeout: o.timeout}, baseURL: u}, nil
}

// Login logs the user in with the token pair that the API's login flow
// returned, saving it to the store.
func (c *Client) Login(ctx context.Context, tok *oauth2.Token) error {
	if err := c.tr.SetToken(ctx, tok); err != nil {
		return fmt.Errorf("items: %w", err)
	}
	return nil
}

// Logout ends the session and clears the store: later calls fail with
// [ErrLoginRequired] until the next Login.
func (c *Client) Logout(ctx context.Context) error {
	if err := c.tr.Logout(ctx); err != nil {
		return fmt.Errorf("items: %w", err)
	}
	return nil
}

// Close closes the idle connections of the client, those of its token
// requests included. The client stays usable.
func (c *Client) Close() { c.tr.CloseIdleConnections() }

// Item is an item of the API.
type Item struct {
	ID   string
	Path string // where the API found it
}

// Item fetches the item with the given ID.
func (c *Client) Item(ctx context.Context, id string) (*Item, error) {
	u := c.baseURL.JoinPath("api", "items", id)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, fmt.Errorf("items: %w", err)
	}
	resp, err := c.http.Do(req)
	if errors.Is(err, bearer.ErrLoggedOut) || errors.Is(err, bearer.ErrNoToken) {
		return nil, fmt.Errorf("%w: %w", ErrLoginRequired, err)
	}
	if err != nil {
		return nil, fmt.Errorf("items: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("items: GET %s: %s", u.Path, resp.Status)
	}
	var body struct {
		Path string `json:"path"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		return nil, fmt.Errorf("items: decoding the answer: %w", err)
	}
	return &Item{ID: id, Path: body.Path}, nil
}

package bearer

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/seamlessauth/bearer/dpop"
	"github.com/seamlessauth/bearer/internal/challenge"
	"github.com/seamlessauth/bearer/store"
)

// Default values of the optional [Config] fields.
const (
	DefaultLeeway         = 30 * time.Second
	DefaultRefreshTimeout = 30 * time.Second
)

// Config configures a [Transport]. Only Refresher is required.
type Config struct {
	// Refresher obtains a new token. Required.
	Refresher Refresher

	// Store persists the token pair. If nil, an empty in-memory store is
	// used and the first token comes from [Transport.SetToken] or from the
	// Refresher. A store that implements [store.Locker] makes refreshes
	// exclusive across everything that shares it.
	Store store.Store

	// Base sends the requests. If nil, http.DefaultTransport is used. The
	// token requests of the refreshers go through Base too, unless
	// TokenClient is set. A Base that follows redirects itself (one with an
	// http.Client inside, as go-retryablehttp's) takes the hops out of the
	// Transport's sight, and so out of its rules of where the token goes:
	// give it a CheckRedirect that returns http.ErrUseLastResponse.
	Base http.RoundTripper

	// TokenClient sends the token requests of every refresher in this
	// package (and of any Refresher that takes its client from the context
	// under oauth2.HTTPClient): use it when the token endpoint needs another
	// proxy, mTLS or timeouts, or when Base retries requests, which would
	// multiply token requests. If nil, a client over Base is used. Either
	// way a token request follows a redirect only within its origin. A
	// client that the request's context names under oauth2.HTTPClient comes
	// first.
	TokenClient *http.Client

	// DPoP, if set, is the key that proves possession of DPoP-bound tokens
	// (RFC 9449). A token whose token_type is DPoP is then sent as
	// "Authorization: DPoP <token>" with a new proof in the DPoP header at
	// every send (retries and redirect hops included), and every token
	// request of the package's refreshers carries a proof too, so that the
	// server binds the tokens it issues to the key. A token the server
	// issued as Bearer is sent as Bearer (see the package documentation for
	// refusing it). Without a key, a DPoP-bound token is never sent. Token
	// requests through an Endpoint's own HTTPClient get proofs only if that
	// client is one from [dpop.Key.Client].
	DPoP *dpop.Key

	// OnLogout is called when the refresh token is rejected (invalid_grant
	// and the like) or another holder of the store logged out, once per
	// token lineage, after the store lock is released and before any request
	// that failed with it returns. It is never called for a transient
	// failure, a store error or a panic. It may run on a background
	// refresh's goroutine; a panic in it is logged and goes no further.
	// Requests that fail with the logout wait for it to return, and so does
	// a SetToken that ends the logout. If it calls the Transport (Token,
	// SetToken, a request), it must pass its ctx, which is answered at once,
	// or it waits for itself until its own context ends (SetToken: at most
	// RefreshTimeout).
	OnLogout func(ctx context.Context, err error)

	// Leeway is how long before its expiry a token becomes stale and is
	// refreshed, in the background while requests go on with it (see the
	// package documentation). Zero means DefaultLeeway; a negative value
	// disables refreshing before expiry. It never exceeds half the token's
	// lifetime.
	Leeway time.Duration

	// WaitForRefresh makes a request whose token is due for refresh wait for
	// the refresh before it is sent. By default such a request is sent at
	// once with the token, which is still valid, while the one shared
	// refresh runs in the background; only a token within its must-wait
	// margin of expiry (or expired, or rejected) makes requests wait.
	WaitForRefresh bool

	// RefreshTimeout bounds one shared refresh, retries included, whatever
	// the contexts of the requests waiting for it. Zero means
	// DefaultRefreshTimeout.
	RefreshTimeout time.Duration

	// Hosts lists the hosts that get the token ("api.example.com", or
	// "api.example.com:8443" to name a port as well). If empty, each request
	// gets it for its own host, but a redirect hop only for the original host
	// or a subdomain of it.
	Hosts []string

	// AllowHTTP lets the token travel over plain http to hosts other than
	// loopback ones. Off by default.
	AllowHTTP bool

	// ShouldRefresh reports whether a response means the token was rejected.
	// If nil, a 401 with no WWW-Authenticate challenge, or with a Bearer
	// challenge whose error is absent or "invalid_token", triggers a refresh;
	// a 401 with only other schemes, or with error="insufficient_scope",
	// does not.
	ShouldRefresh func(*http.Response) bool

	// Logger receives debug and warning records about refreshes. If nil,
	// nothing is logged. Tokens are never logged.
	Logger *slog.Logger

	// OnRefreshStart is called when a shared refresh starts, with the
	// refresh's context; the context it returns is the one the refresh runs
	// with (the Refresher's, the store's and OnRefresh's), so that it can
	// carry a trace span. Returning ctx itself changes nothing; a nil
	// context is taken as ctx. It runs on the refresh's goroutine, which may
	// be a background one, and must not block; a panic in it is logged.
	OnRefreshStart func(ctx context.Context, reason Reason) context.Context

	// OnRefresh is called when a shared refresh ends, successfully or not,
	// on the refresh's goroutine, which may be a background one; it must not
	// block. A panic in it is logged and goes no further.
	OnRefresh func(ctx context.Context, ev RefreshEvent)

	// OnRetry is called before a request is sent again with a new token.
	// req is the caller's request; it must not be modified.
	OnRetry func(req *http.Request)
}

// Reason says why a refresh started.
type Reason int

// The reasons for a refresh.
const (
	// ReasonExpiring: the token expires within the leeway.
	ReasonExpiring Reason = iota + 1
	// ReasonRejected: the server answered 401 (see Config.ShouldRefresh).
	ReasonRejected
	// ReasonNoToken: there was no token yet.
	ReasonNoToken
)

// String returns the reason's name: "expiring", "rejected" or "no-token".
func (r Reason) String() string {
	switch r {
	case ReasonExpiring:
		return "expiring"
	case ReasonRejected:
		return "rejected"
	case ReasonNoToken:
		return "no-token"
	}
	return fmt.Sprintf("Reason(%d)", int(r))
}

// RefreshEvent describes a finished shared refresh. It holds no token.
type RefreshEvent struct {
	Reason   Reason
	Duration time.Duration
	// Attempts is the number of refresher calls (0 when a token saved by
	// another process was adopted instead).
	Attempts int
	// Adopted is true when a newer token found in the store was used
	// instead of refreshing.
	Adopted bool
	// Expiry of the new token; zero if it has none or the refresh failed.
	Expiry time.Time
	// Err is nil on success; otherwise a *RefreshError.
	Err error
}

// validate checks cfg once, in New, and fills in the defaults.
func (cfg Config) validate() (Config, error) {
	if cfg.Refresher == nil {
		return cfg, errors.New("bearer: Config.Refresher is required")
	}
	if cfg.Store == nil {
		cfg.Store = store.NewMemory(nil)
	}
	if cfg.Base == nil {
		cfg.Base = http.DefaultTransport
	}
	if cfg.Leeway == 0 {
		cfg.Leeway = DefaultLeeway
	}
	if cfg.RefreshTimeout < 0 {
		return cfg, fmt.Errorf("bearer: Config.RefreshTimeout is negative (%v)", cfg.RefreshTimeout)
	}
	if cfg.RefreshTimeout == 0 {
		cfg.RefreshTimeout = DefaultRefreshTimeout
	}
	if err := checkHosts(cfg.Hosts); err != nil {
		return cfg, err
	}
	if cfg.ShouldRefresh == nil {
		cfg.ShouldRefresh = defaultShouldRefresh
	}
	return cfg, nil
}

// defaultShouldRefresh: a 401 whose challenges, if any, include a Bearer
// challenge (RFC 6750 §3.1) or, for a request sent with a DPoP-bound token,
// a DPoP challenge (RFC 9449 §7.1) that blames the token or gives no error
// at all. A DPoP challenge that blames the proof (invalid_dpop_proof) or
// asks for a nonce (use_dpop_nonce) is not the token's fault.
func defaultShouldRefresh(resp *http.Response) bool {
	if resp.StatusCode != http.StatusUnauthorized {
		return false
	}
	if len(resp.Header.Values("Www-Authenticate")) == 0 {
		return true
	}
	var code string
	found := false
	if sentDPoP(resp.Request) {
		code, found = dpop.ChallengeError(resp.Header)
	}
	if !found { // a Bearer request, or a DPoP one answered in Bearer words
		c, ok := challenge.First(resp.Header, "Bearer")
		if !ok {
			return false
		}
		code = c.Param("error")
	}
	switch strings.ToLower(code) {
	case "", "invalid_token":
		return true
	}
	return false
}

// sentDPoP reports whether req, the request a response answers, carried a
// DPoP-bound token.
func sentDPoP(req *http.Request) bool {
	if req == nil {
		return false
	}
	scheme, _, _ := strings.Cut(req.Header.Get("Authorization"), " ")
	return strings.EqualFold(scheme, "DPoP")
}

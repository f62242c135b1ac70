package bearertest

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/oauth2"
)

// Default values of [Options].
const (
	DefaultAccessTTL    = time.Hour
	DefaultClientID     = "bearer-client"
	DefaultClientSecret = "bearer-secret"
)

// Options configures a [Server]. Zero values are the defaults.
type Options struct {
	// AccessTTL is the lifetime of access tokens. Zero or negative means
	// DefaultAccessTTL (1 hour). Token answers carry it as expires_in in
	// whole seconds, at least 1.
	AccessTTL time.Duration

	// RefreshTTL is the lifetime of each refresh token, counted from the moment
	// it was issued. Zero or negative means refresh tokens never expire.
	RefreshTTL time.Duration

	// Rotate makes each refresh issue a new refresh token and retire the
	// presented one. Without it the same refresh token keeps working and
	// refresh responses carry no refresh token (clients keep the one they have).
	Rotate bool

	// ReuseDetection makes the presentation of a retired refresh token revoke
	// its whole lineage, refresh and access tokens alike (RFC 9700 §4.14.2).
	// It only has an effect together with Rotate, since only rotation retires
	// refresh tokens.
	ReuseDetection bool

	// ClientID is the only client the server knows. Empty means DefaultClientID.
	ClientID string

	// ClientSecret is that client's secret. Empty means DefaultClientSecret.
	ClientSecret string

	// Now is the clock for every expiry decision, and for the Expiry of the
	// tokens [Server.Issue] returns. If nil, time.Now is used. Clients that
	// compute Expiry from expires_in (x/oauth2 does) use their own clock.
	Now func() time.Time

	// DPoP makes the server bind tokens to keys (RFC 9449): a token request
	// that carries a valid DPoP proof starts (or continues) a lineage bound
	// to the proof's key, whose tokens have token_type DPoP; its refresh
	// token works only with a proof of that key, and its access tokens only
	// as "Authorization: DPoP" with a proof of it (htm, htu, ath, a jti not
	// seen before, an iat within a minute of the real clock). A request
	// without a proof gets Bearer tokens, as before.
	DPoP bool

	// DPoPNonce makes every proof carry the server's current nonce, at the
	// token endpoint (400 use_dpop_nonce otherwise) and at the API (401 with
	// a DPoP use_dpop_nonce challenge); every answer carries the nonce in
	// its DPoP-Nonce header. See [Server.RotateDPoPNonce]. It needs DPoP.
	DPoPNonce bool

	// Latency is added to every request to /token and /refresh. The wait ends
	// early when the request context ends or the server is closed.
	Latency time.Duration
}

// Server is an in-process OAuth2 authorization server and protected API on a
// loopback [httptest.Server]. It is safe for concurrent use.
type Server struct {
	URL           string // base URL, http://127.0.0.1:port
	TokenURL      string // URL + "/token"
	AuthURL       string // URL + "/authorize"
	RefreshURL    string // URL + "/refresh", the axios-style JSON endpoint
	APIURL        string // URL + "/api"
	RevocationURL string // URL + "/revoke", the RFC 7009 revocation endpoint

	opts Options
	now  func() time.Time
	ts   *httptest.Server

	done      chan struct{} // closed by Close, ends every wait
	closeOnce sync.Once

	onToken      atomic.Pointer[func(*http.Request)]
	tokenFaults  faultQueue
	apiFaults    faultQueue
	revokeFaults faultQueue
	stats        counters
	tokens       tokenState
	codes        codeStore
	dpop         dpopState
}

// NewServer starts a Server on a loopback port. Call [Server.Close] when done.
func NewServer(opts Options) *Server {
	if opts.AccessTTL <= 0 {
		opts.AccessTTL = DefaultAccessTTL
	}
	if opts.RefreshTTL < 0 {
		opts.RefreshTTL = 0
	}
	if opts.ClientID == "" {
		opts.ClientID = DefaultClientID
	}
	if opts.ClientSecret == "" {
		opts.ClientSecret = DefaultClientSecret
	}
	now := opts.Now
	if now == nil {
		now = time.Now
	}
	s := &Server{
		opts:   opts,
		now:    now,
		done:   make(chan struct{}),
		tokens: newTokenState(),
		codes:  codeStore{m: make(map[string]codeEntry)},
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/token", s.serveToken)
	mux.HandleFunc("/refresh", s.serveRefresh)
	mux.HandleFunc("/authorize", s.serveAuthorize)
	mux.HandleFunc("/callback", serveCallback)
	mux.HandleFunc("/revoke", s.serveRevoke)
	mux.HandleFunc("/api", s.serveAPI)
	mux.HandleFunc("/api/", s.serveAPI)
	s.ts = httptest.NewServer(mux)

	s.URL = s.ts.URL
	s.TokenURL = s.URL + "/token"
	s.AuthURL = s.URL + "/authorize"
	s.RefreshURL = s.URL + "/refresh"
	s.APIURL = s.URL + "/api"
	s.RevocationURL = s.URL + "/revoke"
	return s
}

// Close ends every pending delay, shuts the server down and blocks until all
// outstanding requests have completed. It is safe to call more than once.
func (s *Server) Close() {
	s.closeOnce.Do(func() { close(s.done) })
	s.ts.Close()
}

// Config returns an [oauth2.Config] for the server's client: its ID and
// secret, the authorize and token endpoints (AuthStyle left to autodetect),
// RedirectURL URL+"/callback" and no scopes. Each call returns a new Config.
func (s *Server) Config() *oauth2.Config {
	return &oauth2.Config{
		ClientID:     s.opts.ClientID,
		ClientSecret: s.opts.ClientSecret,
		Endpoint: oauth2.Endpoint{
			AuthURL:  s.AuthURL,
			TokenURL: s.TokenURL,
		},
		RedirectURL: s.URL + "/callback",
	}
}

// Client returns the plain [http.Client] of the underlying httptest server:
// no authentication, connections closed by [Server.Close].
func (s *Server) Client() *http.Client {
	return s.ts.Client()
}

// OnToken sets a hook called synchronously, before any other handling, for
// each request to /token and /refresh; tests use it to hold a refresh on a
// channel. The hook must not read the request body. nil removes the hook.
func (s *Server) OnToken(fn func(r *http.Request)) {
	if fn == nil {
		s.onToken.Store(nil)
		return
	}
	s.onToken.Store(&fn)
}

// wait blocks for d, and reports false if the request's context ended or
// the server was closed first. It reads the request body first and hands it
// on in memory: net/http notices that a client has gone, and ends the
// context, only once the body has been read.
func (s *Server) wait(r *http.Request, d time.Duration) bool {
	if d <= 0 {
		return true
	}
	body, err := io.ReadAll(r.Body)
	r.Body = io.NopCloser(bytes.NewReader(body))
	if err != nil {
		return false
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-r.Context().Done():
		return false
	case <-s.done:
		return false
	}
}

// serveCallback answers the default redirect URI, so that a browser (or a
// client that follows redirects) ends the authorization step on a page.
func serveCallback(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	_, _ = w.Write([]byte("bearertest: authorization complete\n"))
}

package bearertest

import (
	"crypto/rand"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/oauth2"
)

// Token prefixes, so that tests can search output for leaked secrets.
const (
	AccessPrefix  = "at_"
	RefreshPrefix = "rt_"
	CodePrefix    = "code_"
)

// newSecret returns an opaque random string with the given prefix.
func newSecret(prefix string) string {
	return prefix + rand.Text()
}

// A lineage is the family of tokens descending from one login.
type lineage struct {
	id      uint64
	jkt     string // the thumbprint of the key its tokens are bound to; "" for Bearer
	revoked atomic.Bool
}

type accessEntry struct {
	lin     *lineage
	seq     uint64
	expiry  time.Time
	revoked bool // by /revoke
}

type refreshEntry struct {
	lin     *lineage
	expiry  time.Time // zero: never expires
	retired bool      // guarded by tokenState.refreshMu
}

// tokenState holds every token the server issued. Revocation of "everything
// so far" is a watermark over sequence numbers, so it costs O(1).
type tokenState struct {
	lastLineage  atomic.Uint64
	lineageFloor atomic.Uint64 // lineages with a smaller id are revoked
	lastAccess   atomic.Uint64
	accessFloor  atomic.Uint64 // access tokens with a smaller seq are revoked

	accessMu sync.RWMutex
	access   map[string]accessEntry

	refreshMu sync.Mutex
	refresh   map[string]*refreshEntry
}

func newTokenState() tokenState {
	return tokenState{
		access:  make(map[string]accessEntry),
		refresh: make(map[string]*refreshEntry),
	}
}

// grant is the outcome of a successful grant.
type grant struct {
	bound   bool // DPoP-bound
	access  string
	refresh string // empty when no refresh token is issued
	expiry  time.Time
	ttl     time.Duration
}

// newLineage starts a lineage, bound to the key whose thumbprint is jkt
// unless jkt is "".
func (s *Server) newLineage(jkt string) *lineage {
	return &lineage{id: s.tokens.lastLineage.Add(1), jkt: jkt}
}

func (s *Server) lineageValid(l *lineage) bool {
	return !l.revoked.Load() && l.id >= s.tokens.lineageFloor.Load()
}

// mint issues an access token, and a refresh token when withRefresh is set,
// in lineage l.
func (s *Server) mint(l *lineage, withRefresh bool) grant {
	now := s.now()
	g := grant{
		bound:  l.jkt != "",
		access: newSecret(AccessPrefix),
		expiry: now.Add(s.opts.AccessTTL),
		ttl:    s.opts.AccessTTL,
	}
	e := accessEntry{lin: l, seq: s.tokens.lastAccess.Add(1), expiry: g.expiry}
	s.tokens.accessMu.Lock()
	s.tokens.access[g.access] = e
	s.tokens.accessMu.Unlock()

	if withRefresh {
		g.refresh = newSecret(RefreshPrefix)
		re := &refreshEntry{lin: l}
		if s.opts.RefreshTTL > 0 {
			re.expiry = now.Add(s.opts.RefreshTTL)
		}
		s.tokens.refreshMu.Lock()
		s.tokens.refresh[g.refresh] = re
		s.tokens.refreshMu.Unlock()
	}
	s.stats.issued.Add(1)
	return g
}

// refreshGrant applies the refresh rules to a presented refresh token. The
// check and the retirement of the token happen under one lock, so of two
// concurrent refreshes with one rotating token exactly one succeeds.
func (s *Server) refreshGrant(presented, jkt string) (grant, *oauthError) {
	now := s.now()
	var oerr *oauthError
	refuse := func(desc string) { oerr = invalidGrant(desc) }
	t := &s.tokens
	t.refreshMu.Lock()
	e := t.refresh[presented]
	switch {
	case e == nil:
		refuse("unknown refresh token")
	case e.retired && s.opts.ReuseDetection:
		e.lin.revoked.Store(true)
		s.stats.reuseDetections.Add(1)
		refuse("refresh token reused; its lineage is revoked")
	case e.retired:
		refuse("refresh token already used")
	case !s.lineageValid(e.lin):
		refuse("refresh token revoked")
	case !e.expiry.IsZero() && !now.Before(e.expiry):
		refuse("refresh token expired")
	case e.lin.jkt != "" && jkt == "":
		oerr = &oauthError{status: http.StatusBadRequest, code: "invalid_dpop_proof",
			desc: "the refresh token is DPoP-bound: a proof of its key is required"}
	case e.lin.jkt != jkt && e.lin.jkt != "":
		refuse("the refresh token is bound to another key")
	case s.opts.Rotate:
		e.retired = true
	}
	t.refreshMu.Unlock()
	if oerr != nil {
		return grant{}, oerr
	}
	s.stats.refreshes.Add(1)
	return s.mint(e.lin, s.opts.Rotate), nil
}

// checkAccess reports whether an access token is valid now, and why not.
// A DPoP-bound token also returns the thumbprint of its key.
func (s *Server) checkAccess(tok string) (ok bool, desc, jkt string) {
	s.tokens.accessMu.RLock()
	e, found := s.tokens.access[tok]
	s.tokens.accessMu.RUnlock()
	switch {
	case !found:
		return false, "unknown access token", ""
	case e.revoked, e.seq < s.tokens.accessFloor.Load(), !s.lineageValid(e.lin):
		return false, "access token revoked", ""
	case !s.now().Before(e.expiry):
		return false, "access token expired", ""
	}
	return true, "", e.lin.jkt
}

// Issue starts a new lineage, as a user logging in would: it returns a fresh
// access and refresh token with TokenType "Bearer" and Expiry now+AccessTTL
// by the server's clock. It counts in [Stats].Issued.
func (s *Server) Issue() *oauth2.Token {
	g := s.mint(s.newLineage(""), true)
	return g.token()
}

// tokenType is the token_type of the grant's tokens.
func (g grant) tokenType() string {
	if g.bound {
		return "DPoP"
	}
	return "Bearer"
}

func (g grant) token() *oauth2.Token {
	return &oauth2.Token{
		AccessToken:  g.access,
		TokenType:    g.tokenType(),
		RefreshToken: g.refresh,
		Expiry:       g.expiry,
		ExpiresIn:    expiresIn(g.ttl),
	}
}

// expiresIn renders a lifetime in whole seconds, at least 1, since 0 means
// "no expiry" to most clients.
func expiresIn(d time.Duration) int64 {
	return max(int64(d/time.Second), 1)
}

// RevokeAccessTokens revokes every access token issued so far: the API
// answers 401 invalid_token to them. Refresh tokens keep working, and the
// access tokens they yield are valid.
func (s *Server) RevokeAccessTokens() {
	raise(&s.tokens.accessFloor, s.tokens.lastAccess.Load()+1)
}

// RevokeRefreshTokens revokes every lineage started so far: their refresh
// tokens get invalid_grant and their access tokens 401. Later logins
// ([Server.Issue] or a grant) are not affected.
func (s *Server) RevokeRefreshTokens() {
	raise(&s.tokens.lineageFloor, s.tokens.lastLineage.Load()+1)
}

// RevokeLineage revokes the lineage refreshToken belongs to (retired tokens
// included): all its refresh and access tokens. An unknown token is ignored.
func (s *Server) RevokeLineage(refreshToken string) { s.revokeRefresh(refreshToken) }

// raise sets v to n unless it already holds more.
func raise(v *atomic.Uint64, n uint64) {
	for {
		old := v.Load()
		if old >= n || v.CompareAndSwap(old, n) {
			return
		}
	}
}

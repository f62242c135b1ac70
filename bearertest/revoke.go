package bearertest

import "net/http"

// serveRevoke is the RFC 7009 revocation endpoint. The client authenticates
// as at /token. A refresh token revokes its whole lineage, refresh and
// access tokens alike (RFC 7009 §2.1: the access tokens of the same grant
// too); an access token revokes that access token alone. The hint
// (token_type_hint) only orders the search, as §2.1 allows: a token is
// found whatever its hint. An unknown token is answered 200, as §2.2 says,
// and so is one already revoked.
func (s *Server) serveRevoke(w http.ResponseWriter, r *http.Request) {
	s.stats.revocationRequests.Add(1)
	if f, ok := s.revokeFaults.next(); ok && s.applyFault(w, r, f) {
		return
	}
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		writeOAuthError(w, &oauthError{status: http.StatusMethodNotAllowed,
			code: "invalid_request", desc: r.URL.Path + " accepts only POST"})
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
	if err := r.ParseForm(); err != nil {
		writeOAuthError(w, invalidRequest("malformed form body"))
		return
	}
	if _, oerr := s.authenticateClient(r); oerr != nil {
		writeOAuthError(w, oerr)
		return
	}
	tok := r.PostForm.Get("token")
	if tok == "" {
		writeOAuthError(w, invalidRequest("missing token"))
		return
	}
	first, second := s.revokeRefresh, s.revokeAccess
	if r.PostForm.Get("token_type_hint") == "access_token" {
		first, second = second, first
	}
	if !first(tok) {
		second(tok)
	}
	s.stats.revocations.Add(1)
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
}

// revokeRefresh revokes the lineage of a refresh token, retired ones
// included, and reports whether the token was known.
func (s *Server) revokeRefresh(tok string) bool {
	s.tokens.refreshMu.Lock()
	e := s.tokens.refresh[tok]
	s.tokens.refreshMu.Unlock()
	if e == nil {
		return false
	}
	e.lin.revoked.Store(true)
	return true
}

// revokeAccess revokes one access token and reports whether it was known.
func (s *Server) revokeAccess(tok string) bool {
	t := &s.tokens
	t.accessMu.Lock()
	defer t.accessMu.Unlock()
	e, ok := t.access[tok]
	if ok {
		e.revoked = true
		t.access[tok] = e
	}
	return ok
}

// FailRevoke is [Server.FailToken] for /revoke.
func (s *Server) FailRevoke(n int, f Fault) { s.revokeFaults.add(n, f) }

// Active reports whether the server would accept tok now, as an RFC 7662
// introspection would answer "active": an access token that the API takes,
// or a refresh token that a refresh would take (known, neither revoked,
// retired by rotation nor expired). Asking changes nothing: a retired
// refresh token is inactive without triggering reuse detection.
func (s *Server) Active(tok string) bool {
	if ok, _, _ := s.checkAccess(tok); ok {
		return true
	}
	t := &s.tokens
	t.refreshMu.Lock()
	defer t.refreshMu.Unlock()
	e := t.refresh[tok]
	return e != nil && !e.retired && s.lineageValid(e.lin) && (e.expiry.IsZero() || s.now().Before(e.expiry))
}

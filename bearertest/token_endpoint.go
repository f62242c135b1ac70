package bearertest

import (
	"crypto/subtle"
	"net/http"
	"net/url"
)

// maxFormBytes bounds the body of a token request.
const maxFormBytes = 64 << 10

// tokenResponse is the RFC 6749 §5.1 success answer.
type tokenResponse struct {
	AccessToken  string `json:"access_token"`
	TokenType    string `json:"token_type"`
	ExpiresIn    int64  `json:"expires_in"`
	RefreshToken string `json:"refresh_token,omitempty"`
}

// beforeToken runs the steps shared by /token and /refresh: count, hook,
// latency, fault, and the refusal of any method but POST. It reports false
// when the request has been answered.
func (s *Server) beforeToken(w http.ResponseWriter, r *http.Request) bool {
	s.stats.tokenRequests.Add(1)
	if fn := s.onToken.Load(); fn != nil {
		(*fn)(r)
	}
	if !s.wait(r, s.opts.Latency) {
		abandon(w)
		return false
	}
	if f, ok := s.tokenFaults.next(); ok && s.applyFault(w, r, f) {
		return false
	}
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		writeOAuthError(w, &oauthError{status: http.StatusMethodNotAllowed,
			code: "invalid_request", desc: r.URL.Path + " accepts only POST"})
		return false
	}
	return true
}

// serveToken is the RFC 6749 token endpoint.
func (s *Server) serveToken(w http.ResponseWriter, r *http.Request) {
	if !s.beforeToken(w, r) {
		return
	}
	nonce := s.giveNonce(w)
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
	if err := r.ParseForm(); err != nil {
		writeOAuthError(w, invalidRequest("malformed form body"))
		return
	}
	grantType := r.PostForm.Get("grant_type")
	jkt, perr := s.checkProof(r, s.TokenURL, "", nonce)
	if perr != nil {
		if grantType == "refresh_token" {
			s.stats.refreshFailures.Add(1)
		}
		writeProofError(w, perr, false)
		return
	}
	g, oerr := s.tokenGrant(r, grantType, jkt)
	if oerr != nil {
		if grantType == "refresh_token" {
			s.stats.refreshFailures.Add(1)
		}
		writeOAuthError(w, oerr)
		return
	}
	writeJSON(w, http.StatusOK, tokenResponse{
		AccessToken:  g.access,
		TokenType:    g.tokenType(),
		ExpiresIn:    expiresIn(g.ttl),
		RefreshToken: g.refresh,
	})
}

// tokenGrant authenticates the client and runs the requested grant.
// jkt is the thumbprint of the key of the request's DPoP proof, or "".
func (s *Server) tokenGrant(r *http.Request, grantType, jkt string) (grant, *oauthError) {
	clientID, oerr := s.authenticateClient(r)
	if oerr != nil {
		return grant{}, oerr
	}
	form := r.PostForm
	switch grantType {
	case "refresh_token":
		rt := form.Get("refresh_token")
		if rt == "" {
			return grant{}, invalidRequest("missing refresh_token")
		}
		return s.refreshGrant(rt, jkt)
	case "authorization_code":
		return s.codeGrant(form, clientID, jkt)
	case "client_credentials":
		return s.mint(s.newLineage(jkt), false), nil
	case "":
		return grant{}, invalidRequest("missing grant_type")
	default:
		return grant{}, &oauthError{status: http.StatusBadRequest,
			code: "unsupported_grant_type", desc: "grant type not supported"}
	}
}

// authenticateClient checks the client credentials, sent with HTTP Basic
// (form-urlencoded, RFC 6749 §2.3.1) or as client_id/client_secret in the
// body, and returns the client ID. Failures are 401 invalid_client with a
// Basic challenge when Basic was used or nothing was sent, and 400
// invalid_client when body credentials are wrong.
func (s *Server) authenticateClient(r *http.Request) (string, *oauthError) {
	form := r.PostForm
	if user, pass, ok := r.BasicAuth(); ok {
		s.stats.basicAuth.Add(1)
		id, err1 := url.QueryUnescape(user)
		secret, err2 := url.QueryUnescape(pass)
		switch {
		case err1 != nil || err2 != nil || !s.clientMatches(id, secret):
			return "", &oauthError{status: http.StatusUnauthorized, code: "invalid_client",
				desc: "client authentication failed", challenge: true}
		case form.Has("client_secret"):
			return "", invalidRequest("more than one client authentication method")
		case form.Has("client_id") && form.Get("client_id") != id:
			return "", &oauthError{status: http.StatusUnauthorized, code: "invalid_client",
				desc: "client_id does not match the authenticated client", challenge: true}
		}
		return id, nil
	}
	if !form.Has("client_id") {
		return "", &oauthError{status: http.StatusUnauthorized, code: "invalid_client",
			desc: "client authentication required", challenge: true}
	}
	s.stats.bodyAuth.Add(1)
	id := form.Get("client_id")
	if !s.clientMatches(id, form.Get("client_secret")) {
		return "", &oauthError{status: http.StatusBadRequest, code: "invalid_client",
			desc: "client authentication failed"}
	}
	return id, nil
}

func (s *Server) clientMatches(id, secret string) bool {
	idOK := subtle.ConstantTimeCompare([]byte(id), []byte(s.opts.ClientID))
	secretOK := subtle.ConstantTimeCompare([]byte(secret), []byte(s.opts.ClientSecret))
	return idOK&secretOK == 1
}

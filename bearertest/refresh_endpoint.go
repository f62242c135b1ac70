package bearertest

import (
	"encoding/json"
	"net/http"
)

// refreshRequest is the body of POST /refresh.
type refreshRequest struct {
	Token string `json:"token"`
}

// refreshResponse is the success answer of POST /refresh.
type refreshResponse struct {
	AccessToken  string `json:"accessToken"`
	RefreshToken string `json:"refreshToken,omitempty"`
	ExpiresIn    int64  `json:"expiresIn"`
}

// serveRefresh is the axios-style JSON refresh endpoint many web backends
// expose: {"token": refresh} → {"accessToken", "refreshToken"?, "expiresIn"}.
// It follows the same lineage, rotation and reuse rules as the refresh_token
// grant, needs no client authentication, and answers a rejected refresh token
// with 401 {"error":"invalid_grant"}.
func (s *Server) serveRefresh(w http.ResponseWriter, r *http.Request) {
	if !s.beforeToken(w, r) {
		return
	}
	var req refreshRequest
	err := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxFormBytes)).Decode(&req)
	switch {
	case err != nil:
		s.stats.refreshFailures.Add(1)
		writeOAuthError(w, invalidRequest("malformed JSON body"))
		return
	case req.Token == "":
		s.stats.refreshFailures.Add(1)
		writeOAuthError(w, invalidRequest("missing token"))
		return
	}
	g, oerr := s.refreshGrant(req.Token, "")
	if oerr != nil {
		s.stats.refreshFailures.Add(1)
		oerr.status = http.StatusUnauthorized
		writeOAuthError(w, oerr)
		return
	}
	writeJSON(w, http.StatusOK, refreshResponse{
		AccessToken:  g.access,
		RefreshToken: g.refresh,
		ExpiresIn:    expiresIn(g.ttl),
	})
}

package bearertest

import (
	"fmt"
	"io"
	"net/http"
	"strings"
)

// apiResponse is the answer of the protected API to a valid request.
type apiResponse struct {
	OK        bool   `json:"ok"`
	Method    string `json:"method"`
	Path      string `json:"path"`
	BodyBytes int64  `json:"bodyBytes"`
}

// serveAPI is the protected resource: /api and everything under /api/, any
// method. A valid bearer token gets 200 {"ok":true,"method","path","bodyBytes"};
// /api/echo answers the request body instead. Otherwise 401 with an RFC 6750
// §3 challenge.
func (s *Server) serveAPI(w http.ResponseWriter, r *http.Request) {
	s.stats.apiRequests.Add(1)
	if f, ok := s.apiFaults.next(); ok && s.applyFault(w, r, f) {
		if f.Status == http.StatusUnauthorized && !f.Reset && !f.Truncate {
			s.stats.apiUnauthorized.Add(1)
		}
		return
	}
	tok, ok := bearerToken(r)
	if !ok {
		s.stats.apiUnauthorized.Add(1)
		w.Header().Set("WWW-Authenticate", `Bearer realm="bearertest"`)
		writeJSON(w, http.StatusUnauthorized, errorBody{Error: "unauthorized"})
		return
	}
	if valid, desc := s.checkAccess(tok); !valid {
		s.stats.apiUnauthorized.Add(1)
		w.Header().Set("WWW-Authenticate",
			fmt.Sprintf(`Bearer realm="bearertest", error="invalid_token", error_description=%q`, desc))
		writeJSON(w, http.StatusUnauthorized, errorBody{Error: "invalid_token", Description: desc})
		return
	}
	if r.URL.Path == "/api/echo" {
		ct := r.Header.Get("Content-Type")
		if ct == "" {
			ct = "application/octet-stream"
		}
		w.Header().Set("Content-Type", ct)
		w.WriteHeader(http.StatusOK)
		_, _ = io.Copy(w, r.Body)
		return
	}
	n, _ := io.Copy(io.Discard, r.Body)
	writeJSON(w, http.StatusOK, apiResponse{OK: true, Method: r.Method, Path: r.URL.Path, BodyBytes: n})
}

// bearerToken extracts the token of an "Authorization: Bearer" header.
func bearerToken(r *http.Request) (string, bool) {
	scheme, tok, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	tok = strings.TrimSpace(tok)
	if !ok || !strings.EqualFold(scheme, "Bearer") || tok == "" {
		return "", false
	}
	return tok, true
}

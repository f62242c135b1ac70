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
// §3 challenge, or for a DPoP-bound token one of RFC 9449 §7.1.
func (s *Server) serveAPI(w http.ResponseWriter, r *http.Request) {
	s.stats.apiRequests.Add(1)
	if f, ok := s.apiFaults.next(); ok && s.applyFault(w, r, f) {
		if f.Status == http.StatusUnauthorized && !f.Reset && !f.Truncate {
			s.stats.apiUnauthorized.Add(1)
		}
		return
	}
	nonce := s.giveNonce(w)
	tok, scheme, ok := accessToken(r)
	if !ok {
		s.stats.apiUnauthorized.Add(1)
		w.Header().Set("WWW-Authenticate", `Bearer realm="bearertest"`)
		writeJSON(w, http.StatusUnauthorized, errorBody{Error: "unauthorized"})
		return
	}
	valid, desc, jkt := s.checkAccess(tok)
	if valid && (jkt != "") != (scheme == "DPoP") {
		valid, desc = false, "a DPoP-bound token goes with the DPoP scheme, and only it does"
	}
	if valid && jkt != "" {
		got, perr := s.checkProof(r, s.URL+r.URL.EscapedPath(), tok, nonce)
		if perr == nil && got != jkt {
			perr = s.refuse("the proof is not signed by the token's key")
		}
		if perr != nil {
			s.stats.apiUnauthorized.Add(1)
			writeProofError(w, perr, true)
			return
		}
	}
	if !valid {
		s.stats.apiUnauthorized.Add(1)
		challenge := `Bearer realm="bearertest"`
		if scheme == "DPoP" {
			challenge = `DPoP algs="ES256 EdDSA PS256"`
		}
		w.Header().Set("WWW-Authenticate",
			fmt.Sprintf(`%s, error="invalid_token", error_description=%q`, challenge, desc))
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

// accessToken extracts the token of an "Authorization: Bearer" or
// "Authorization: DPoP" header, and the scheme, as "Bearer" or "DPoP".
func accessToken(r *http.Request) (tok, scheme string, ok bool) {
	scheme, tok, ok = strings.Cut(r.Header.Get("Authorization"), " ")
	tok = strings.TrimSpace(tok)
	switch {
	case !ok || tok == "":
		return "", "", false
	case strings.EqualFold(scheme, "Bearer"):
		return tok, "Bearer", true
	case strings.EqualFold(scheme, "DPoP"):
		return tok, "DPoP", true
	}
	return "", "", false
}

package bearertest

import (
	"crypto/rand"
	"fmt"
	"net/http"
	"sync"
	"time"

	"golang.org/x/oauth2"

	"github.com/seamlessauth/bearer/internal/dpopcheck"
)

// This file is the server's side of DPoP (RFC 9449): proofs at the token
// endpoint bind a login's tokens to the client's key, and the API accepts a
// bound token only with a proof of that key.

// maxProofAge bounds how far a proof's iat may be from the real clock.
const maxProofAge = time.Minute

// dpopState holds the server's nonce and the jti of recent proofs.
type dpopState struct {
	mu    sync.Mutex
	nonce string
	seen  map[string]time.Time // jti → when it was seen
}

// RotateDPoPNonce makes the server give out a new nonce: proofs with the old
// one are answered with use_dpop_nonce and the new one. It has an effect
// only with Options.DPoPNonce.
func (s *Server) RotateDPoPNonce() {
	s.dpop.mu.Lock()
	defer s.dpop.mu.Unlock()
	s.dpop.nonce = "nonce-" + rand.Text()
}

func (s *Server) currentNonce() string {
	s.dpop.mu.Lock()
	defer s.dpop.mu.Unlock()
	if s.dpop.nonce == "" {
		s.dpop.nonce = "nonce-" + rand.Text()
	}
	return s.dpop.nonce
}

// giveNonce puts the current nonce in the DPoP-Nonce header of the answer
// and returns it, when the server has DPoPNonce; else it returns "". The
// answers of /token and /api carry it, whether the request has a proof or
// not, except an injected fault's and that of a /token request that is not
// a POST.
func (s *Server) giveNonce(w http.ResponseWriter) string {
	if !s.opts.DPoP || !s.opts.DPoPNonce {
		return ""
	}
	n := s.currentNonce()
	w.Header().Set("DPoP-Nonce", n)
	return n
}

// proofError is why a proof was refused: use_dpop_nonce or
// invalid_dpop_proof, with a description.
type proofError struct{ code, desc string }

// checkProof checks the DPoP header of r for a request to htu that carries
// accessToken ("" for a token request), against nonce, the one its answer
// gives (giveNonce), and returns the proof's key thumbprint; "" and nil
// when r has no proof.
func (s *Server) checkProof(r *http.Request, htu, accessToken, nonce string) (string, *proofError) {
	if !s.opts.DPoP {
		return "", nil
	}
	values := r.Header.Values("DPoP")
	switch {
	case len(values) == 0:
		return "", nil
	case len(values) > 1:
		return "", s.refuse("more than one DPoP header")
	}
	p, err := dpopcheck.Verify(values[0])
	if err != nil {
		return "", s.refuse(err.Error())
	}
	switch {
	case p.HTM != r.Method:
		return "", s.refuse("htm does not match the request's method")
	case p.HTU != htu:
		return "", s.refuse(fmt.Sprintf("htu %q does not match %q", p.HTU, htu))
	case time.Since(time.Unix(p.IAT, 0)).Abs() > maxProofAge:
		return "", s.refuse("iat is too far from now")
	case accessToken != "" && p.ATH != dpopcheck.Hash(accessToken):
		return "", s.refuse("ath does not match the access token")
	case accessToken == "" && p.ATH != "":
		return "", s.refuse("ath in a proof without an access token")
	}
	if s.opts.DPoPNonce && p.Nonce != nonce {
		s.stats.dpopNonceChallenges.Add(1)
		return "", &proofError{"use_dpop_nonce", "a proof with the server's current nonce is required"}
	}
	if !s.firstUse(p.JTI) {
		return "", s.refuse("jti already used")
	}
	s.stats.dpopProofs.Add(1)
	return p.JKT, nil
}

func (s *Server) refuse(desc string) *proofError {
	s.stats.dpopRejected.Add(1)
	return &proofError{"invalid_dpop_proof", desc}
}

// firstUse records jti and reports whether it had not been seen within
// twice the proofs' allowed age.
func (s *Server) firstUse(jti string) bool {
	s.dpop.mu.Lock()
	defer s.dpop.mu.Unlock()
	now := time.Now()
	if s.dpop.seen == nil {
		s.dpop.seen = make(map[string]time.Time)
	}
	if len(s.dpop.seen) > 100_000 {
		for j, at := range s.dpop.seen {
			if now.Sub(at) > 2*maxProofAge {
				delete(s.dpop.seen, j)
			}
		}
	}
	if _, ok := s.dpop.seen[jti]; ok {
		return false
	}
	s.dpop.seen[jti] = now
	return true
}

// writeProofError answers a refused proof at the token endpoint (400 and a
// JSON error, §8) or at the API (401 and a DPoP challenge, §9).
func writeProofError(w http.ResponseWriter, e *proofError, api bool) {
	if !api {
		writeJSON(w, http.StatusBadRequest, errorBody{Error: e.code, Description: e.desc})
		return
	}
	w.Header().Set("WWW-Authenticate", fmt.Sprintf(`DPoP algs="ES256 EdDSA PS256", error=%q, error_description=%q`, e.code, e.desc))
	writeJSON(w, http.StatusUnauthorized, errorBody{Error: e.code, Description: e.desc})
}

// IssueDPoP is [Server.Issue] for a login whose tokens are bound to the key
// whose RFC 7638 thumbprint is jkt (dpop.Key.Thumbprint): the token has
// TokenType "DPoP", and its refresh token and access tokens work only with
// proofs of that key.
func (s *Server) IssueDPoP(jkt string) *oauth2.Token {
	return s.mint(s.newLineage(jkt), true).token()
}

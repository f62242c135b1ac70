package dpop

import (
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// baseFunc is a base transport made of a function: here the fuzzer's
// server, answering what it was given.
type baseFunc func(*http.Request) (*http.Response, error)

func (f baseFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// FuzzNonceAnswers sends one request through a Key's transport to a server
// that answers with the fuzzer's status, WWW-Authenticate, DPoP-Nonce and
// body, the same every time, and checks the rules: at most one retry, and
// one only when the answer asks for a nonce and gives a valid one other
// than the one sent; a kept nonce is always a valid one; every proof
// verifies; the body of what comes back can be read whole.
func FuzzNonceAnswers(f *testing.F) {
	f.Add(401, `DPoP error="use_dpop_nonce"`, "n-1", "")
	f.Add(400, "", "n-1", `{"error":"use_dpop_nonce"}`)
	f.Add(401, `Bearer realm="x", DPoP error=use_dpop_nonce, algs="ES256"`, "n 1", "")
	f.Add(401, `DPoP error="invalid_dpop_proof"`, "n-1", "")
	f.Add(200, "", "abc", "hello")
	f.Add(400, "", `n"1`, `{"error":"use_dpop_nonce"`)
	k, err := GenerateKey()
	if err != nil {
		f.Fatal(err)
	}
	target, _ := url.Parse("https://api.example.com/x")
	f.Fuzz(func(t *testing.T, status int, wwwAuth, nonce, body string) {
		if status < 100 || status > 999 {
			return
		}
		k.nonces = nonceCache{} // each input starts with no nonce
		var proofs []decoded
		base := baseFunc(func(r *http.Request) (*http.Response, error) {
			proofs = append(proofs, verifyProof(t, r.Header.Get("DPoP")))
			h := http.Header{}
			if wwwAuth != "" {
				h.Set("WWW-Authenticate", wwwAuth)
			}
			if nonce != "" {
				h["Dpop-Nonce"] = []string{nonce}
			}
			return &http.Response{StatusCode: status, Header: h, Body: io.NopCloser(strings.NewReader(body)), Request: r}, nil
		})
		req, _ := http.NewRequest(http.MethodPost, target.String(), strings.NewReader("a=b"))
		resp, err := k.Transport(base).RoundTrip(req)
		if err != nil {
			t.Fatalf("RoundTrip: %v", err)
		}
		got, _ := io.ReadAll(resp.Body)
		if string(got) != body {
			t.Fatalf("body %q came back as %q", body, got)
		}
		askedNonce := false
		switch status {
		case 401:
			code, _ := ChallengeError(resp.Header)
			askedNonce = code == "use_dpop_nonce"
		case 400:
			var e struct{ Error string }
			askedNonce = json.Unmarshal([]byte(body), &e) == nil && e.Error == "use_dpop_nonce"
		}
		wantRetry := askedNonce && validNonce(nonce)
		if len(proofs) > 2 || (len(proofs) == 2) != wantRetry {
			t.Fatalf("%d sends for status %d, challenge %q, nonce %q, body %q", len(proofs), status, wwwAuth, nonce, body)
		}
		if len(proofs) == 2 && proofs[1].Claims["nonce"] != nonce {
			t.Fatalf("the retry carried nonce %v, not %q", proofs[1].Claims["nonce"], nonce)
		}
		if kept := k.Nonce(target); kept != "" && (!validNonce(kept) || kept != nonce) {
			t.Fatalf("kept nonce %q from %q", kept, nonce)
		}
	})
}

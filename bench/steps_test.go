package bench

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
)

// This file prices the steps of bearer's hot path one at a time, each next to
// a cheaper way of doing the same thing (the "proposal" sub-benchmarks, with
// their code here), so that the choice rests on numbers. BENCHMARKS.md lists
// the proposals.

// BenchmarkHotPathSteps measures each step of Transport.RoundTrip on a valid
// token, as it is ("now") and as proposed.
func BenchmarkHotPathSteps(b *testing.B) {
	req := hotPathRequest(b)
	auth := "Bearer at_hotpath-access-token-of-typical-length-0123456789"
	authv := []string{auth}
	var sinkH http.Header
	var sinkB bool
	var sinkT time.Time

	b.Run("clone/now", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			h := req.Header.Clone()
			h["Authorization"] = []string{auth}
			sinkH = h
		}
	})
	b.Run("clone/header-only", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			h := req.Header.Clone()
			h["Authorization"] = authv[:1:1]
			sinkH = h
		}
	})
	b.Run("clone/proposal", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			sinkH = cloneWith(req.Header, "Authorization", auth)
		}
	})
	b.Run("has-auth/now", func(b *testing.B) {
		for b.Loop() {
			sinkB = req.Header.Get("Authorization") != ""
		}
	})
	b.Run("has-auth/proposal", func(b *testing.B) {
		for b.Loop() {
			sinkB = hasAuthorization(req.Header)
		}
	})
	type key struct{}
	type other int
	deep := context.Background()
	deep, cancel := context.WithTimeout(deep, time.Hour)
	defer cancel()
	for i := range 4 {
		deep = context.WithValue(deep, other(i), i) // a tracer, a logger, a request ID...
	}
	b.Run("skip-auth/background", func(b *testing.B) {
		ctx := req.Context()
		for b.Loop() {
			sinkB = ctx.Value(key{}) != nil
		}
	})
	b.Run("skip-auth/5-deep", func(b *testing.B) {
		for b.Loop() {
			sinkB = deep.Value(key{}) != nil
		}
	})
	b.Run("clock/time.Now", func(b *testing.B) {
		for b.Loop() {
			sinkT = time.Now()
		}
	})
	_, _, _ = sinkH, sinkB, sinkT
}

// cloneWith is the proposed header copy: a deep copy of h in which key has
// the single value v. Like http.Header.Clone it keeps every value in one
// backing array; that array has one more slot, for v, and the map room for one
// more key, so attaching the token costs no allocation of its own.
func cloneWith(h http.Header, key, v string) http.Header {
	nv := 1
	for _, vv := range h {
		nv += len(vv)
	}
	sv := make([]string, nv)
	h2 := make(http.Header, len(h)+1)
	for k, vv := range h {
		if vv == nil {
			h2[k] = nil
			continue
		}
		n := copy(sv, vv)
		h2[k] = sv[:n:n]
		sv = sv[n:]
	}
	sv[0] = v
	h2[key] = sv[:1:1]
	return h2
}

// hasAuthorization is h.Get("Authorization") != "" without canonicalising a
// key that is canonical already.
func hasAuthorization(h http.Header) bool {
	v := h["Authorization"]
	return len(v) > 0 && v[0] != ""
}

func TestProposalsMatchWhatTheyReplace(t *testing.T) {
	headers := []http.Header{
		nil,
		{},
		{"Accept": {"application/json"}, "User-Agent": {"bench"}},
		{"X-Many": {"a", "b", "c"}, "X-Nil": nil, "X-Empty": {}},
		{"Authorization": {""}, "Accept": {"*/*"}},
		{"K1": {"1"}, "K2": {"2"}, "K3": {"3"}, "K4": {"4"}, "K5": {"5"}, "K6": {"6"}, "K7": {"7"}, "K8": {"8"}},
	}
	for _, h := range headers {
		want := h.Clone()
		if want == nil {
			want = http.Header{}
		}
		want["Authorization"] = []string{"Bearer x"}
		orig := h.Clone()
		got := cloneWith(h, "Authorization", "Bearer x")
		assert.Equal(t, want, got)
		assert.Equal(t, orig, h, "the source changed")
		got.Add("Accept", "more") // appending must not reach the source
		assert.Equal(t, orig, h, "the source changed through the copy")
		assert.Equal(t, h.Get("Authorization") != "", hasAuthorization(h))
	}
}

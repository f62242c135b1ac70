package bench

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
)

// This file prices the steps of bearer's hot path one at a time, each as
// the code does it now ("now") next to the way it did before change A of
// BENCHMARKS.md ("before"), so that the numbers behind that change can be
// measured again.

// BenchmarkHotPathSteps measures each step of Transport.RoundTrip on a valid
// token.
func BenchmarkHotPathSteps(b *testing.B) {
	req := hotPathRequest(b)
	auth := "Bearer at_hotpath-access-token-of-typical-length-0123456789"
	authv := []string{auth}
	var sinkH http.Header
	var sinkB bool
	var sinkT time.Time

	b.Run("clone/before", func(b *testing.B) {
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
	b.Run("clone/now", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			sinkH = cloneWithAuth(req.Header, auth)
		}
	})
	b.Run("has-auth/before", func(b *testing.B) {
		for b.Loop() {
			sinkB = req.Header.Get("Authorization") != ""
		}
	})
	b.Run("has-auth/now", func(b *testing.B) {
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

// cloneWithAuth is a copy of the unexported function of the same name in
// transport.go, which package bench cannot call: h.Clone() plus the
// Authorization value, in one map and one backing array for all the values.
func cloneWithAuth(h http.Header, auth string) http.Header {
	n := 1
	for _, vv := range h {
		n += len(vv)
	}
	values := make([]string, n)
	c := make(http.Header, len(h)+1)
	for k, vv := range h {
		if vv == nil {
			c[k] = nil // as Clone keeps a nil value
			continue
		}
		m := copy(values, vv)
		c[k] = values[:m:m]
		values = values[m:]
	}
	values[0] = auth
	c["Authorization"] = values[:1:1]
	return c
}

// hasAuthorization is a copy of the unexported function of the same name in
// scope.go: h.Get("Authorization") != "", without canonicalising a key that
// is canonical already.
func hasAuthorization(h http.Header) bool {
	v := h["Authorization"]
	return len(v) > 0 && v[0] != ""
}

// TestStepsNowMatchBefore: the copies priced as "now" do what the "before"
// steps do, so that the two rows compare like with like.
func TestStepsNowMatchBefore(t *testing.T) {
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
		got := cloneWithAuth(h, "Bearer x")
		assert.Equal(t, want, got)
		assert.Equal(t, orig, h, "the source changed")
		got.Add("Accept", "more") // appending must not reach the source
		assert.Equal(t, orig, h, "the source changed through the copy")
		assert.Equal(t, h.Get("Authorization") != "", hasAuthorization(h))
	}
}

package bearer

import (
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"golang.org/x/oauth2"
)

// BenchmarkHotPathSteps prices the steps of RoundTrip with a valid token one
// at a time, each next to the standard library's way of doing it: the header
// copy, the check for the caller's Authorization, the scope check and the
// token state.
func BenchmarkHotPathSteps(b *testing.B) {
	req, err := http.NewRequest(http.MethodGet, "https://api.example.com/v1/things?page=2", nil)
	if err != nil {
		b.Fatal(err)
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", "bench/1.0")
	auth := "Bearer at_hotpath-access-token-of-typical-length-0123456789"
	tr, err := New(Config{Refresher: RefresherFunc(nil), Base: http.DefaultTransport})
	if err != nil {
		b.Fatal(err)
	}
	tr.cur.Store(tr.newState(&oauth2.Token{AccessToken: auth[7:], Expiry: time.Now().Add(time.Hour)}, time.Now(), false))
	var sinkH http.Header
	var sinkB bool

	b.Run("clone/stdlib", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			h := req.Header.Clone()
			h["Authorization"] = []string{auth}
			sinkH = h
		}
	})
	b.Run("clone/cloneWithAuth", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			sinkH = cloneWithAuth(req.Header, auth)
		}
	})
	b.Run("has-auth/stdlib", func(b *testing.B) {
		for b.Loop() {
			sinkB = req.Header.Get("Authorization") != ""
		}
	})
	b.Run("has-auth/hasAuthorization", func(b *testing.B) {
		for b.Loop() {
			sinkB = hasAuthorization(req.Header)
		}
	})
	b.Run("scope/mayCarry", func(b *testing.B) {
		for b.Loop() {
			sinkB = tr.mayCarry(req)
		}
	})
	b.Run("state/tokenFor", func(b *testing.B) {
		b.ReportAllocs()
		ctx := req.Context()
		for b.Loop() {
			s, _ := tr.tokenFor(ctx)
			sinkB = s != nil
		}
	})
	_, _ = sinkH, sinkB
}

// TestCloneWithAuth: cloneWithAuth is h.Clone() plus the Authorization
// value, and its result shares nothing with h.
func TestCloneWithAuth(t *testing.T) {
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
	}
}

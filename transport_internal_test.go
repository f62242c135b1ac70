package bearer

import (
	"net/http"
	"testing"
	"time"
	"unsafe"

	"github.com/stretchr/testify/assert"
	"golang.org/x/oauth2"
)

// BenchmarkHotPathSteps prices the steps of RoundTrip with a valid token one
// at a time, each next to the standard library's way of doing it: the header
// copy, the check for the caller's Authorization, the scope check, the
// token state and the clocks.
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
	// The clocks: the Transport reads the wall clock for the token's
	// expiry; a Pool tells an identity's idleness by the monotonic one.
	var sinkT time.Time
	var sinkD time.Duration
	b.Run("clock/time.Now", func(b *testing.B) {
		for b.Loop() {
			sinkT = time.Now()
		}
	})
	start := time.Now()
	b.Run("clock/time.Since", func(b *testing.B) {
		for b.Loop() {
			sinkD = time.Since(start)
		}
	})
	_, _, _, _ = sinkH, sinkB, sinkT, sinkD
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

// TestHotPathLayout keeps every field that a request with a fresh token
// reads of a Transport, of its state and of a Pool's member at the start of
// each, and each in a size class that places it so,
// that a request for an identity that is out of the cache misses one line
// of each (BENCHMARKS.md, section 7). An object whose size is a size class
// that is a multiple of 64 (or of 32) starts a cache line (or its start or
// middle); others start anywhere on 16 bytes, and a hot block of 32 bytes
// then straddles two lines once in four.
func TestHotPathLayout(t *testing.T) {
	if unsafe.Sizeof(uintptr(0)) != 8 {
		t.Skip("the sizes below are those of a 64-bit platform")
	}
	var tr Transport
	var s state
	var m member
	within := func(what string, limit uintptr, fields map[string][2]uintptr) {
		for name, f := range fields {
			assert.LessOrEqual(t, f[0]+f[1], limit, "%s: %s ends past byte %d", what, name, limit)
		}
	}
	within("Transport", 32, map[string][2]uintptr{
		"cfg":   {unsafe.Offsetof(tr.cfg), unsafe.Sizeof(tr.cfg)},
		"hosts": {unsafe.Offsetof(tr.hosts), unsafe.Sizeof(tr.hosts)},
		"now":   {unsafe.Offsetof(tr.now), unsafe.Sizeof(tr.now)},
		"cur":   {unsafe.Offsetof(tr.cur), unsafe.Sizeof(tr.cur)},
	})
	n := unsafe.Sizeof(tr)
	assert.True(t, 176 < n && n <= 192, "Transport: %d bytes, not in the 192-byte size class, which starts a cache line", n)
	within("state", 64, map[string][2]uintptr{
		"loggedOut": {unsafe.Offsetof(s.loggedOut), unsafe.Sizeof(s.loggedOut)},
		"auth":      {unsafe.Offsetof(s.auth), unsafe.Sizeof(s.auth)},
		"refreshAt": {unsafe.Offsetof(s.refreshAt), unsafe.Sizeof(s.refreshAt)},
		"dpop":      {unsafe.Offsetof(s.dpop), unsafe.Sizeof(s.dpop)},
	})
	n = unsafe.Sizeof(s)
	assert.True(t, 112 < n && n <= 128, "state: %d bytes, not in the 128-byte size class, which starts a cache line", n)
	within("member", 32, map[string][2]uintptr{
		"inUse": {unsafe.Offsetof(m.inUse), unsafe.Sizeof(m.inUse)},
		"tr":    {unsafe.Offsetof(m.tr), unsafe.Sizeof(m.tr)},
		"last":  {unsafe.Offsetof(m.last), unsafe.Sizeof(m.last)},
	})
	n = unsafe.Sizeof(m)
	assert.True(t, 80 < n && n <= 96, "member: %d bytes, not in the 96-byte size class, which starts at the start or the middle of a cache line", n)
}

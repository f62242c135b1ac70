package bench

import (
	"net/http"
	"testing"
	"time"

	"golang.org/x/oauth2"
)

// stubBase answers every request with the same canned 200, without network.
type stubBase struct{ resp *http.Response }

func newStubBase() stubBase {
	return stubBase{resp: &http.Response{
		Status:     "200 OK",
		StatusCode: http.StatusOK,
		Proto:      "HTTP/1.1",
		ProtoMajor: 1,
		ProtoMinor: 1,
		Header:     http.Header{"Content-Type": {"application/json"}},
		Body:       http.NoBody,
	}}
}

func (s stubBase) RoundTrip(*http.Request) (*http.Response, error) { return s.resp, nil }

// hotPathEnv is an env whose token is valid for an hour and whose token
// endpoint is never reached.
func hotPathEnv() env {
	return env{
		base: newStubBase(),
		tok: &oauth2.Token{
			AccessToken:  "at_hotpath-access-token-of-typical-length-0123456789",
			TokenType:    "Bearer",
			RefreshToken: "rt_hotpath-refresh-token",
			Expiry:       time.Now().Add(time.Hour),
		},
		cfg: &oauth2.Config{ClientID: "bench", Endpoint: oauth2.Endpoint{
			TokenURL: "https://auth.example.com/token"}},
		refreshURL:  "https://auth.example.com/refresh",
		tokenClient: &http.Client{Transport: newStubBase()},
	}
}

// hotPathRequest is a typical API call: https, two headers, no body.
func hotPathRequest(tb testing.TB) *http.Request {
	req, err := http.NewRequest(http.MethodGet, "https://api.example.com/v1/things?page=2", nil)
	if err != nil {
		tb.Fatal(err)
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", "bench/1.0")
	return req
}

// hotPathContender builds c over a stub base and returns it with the
// request its caller sends.
func hotPathContender(b *testing.B, c contender) (http.RoundTripper, *http.Request) {
	e := hotPathEnv()
	rt, err := c.new(e)
	if err != nil {
		b.Fatal(err)
	}
	return rt, c.request(e, hotPathRequest(b))
}

// BenchmarkHotPath measures one RoundTrip with a valid token over a stub
// base: the cost a contender adds to every request.
func BenchmarkHotPath(b *testing.B) {
	for _, c := range everyone {
		b.Run(c.name, func(b *testing.B) {
			rt, req := hotPathContender(b, c)
			sendInLoop(b, rt, req)
		})
	}
}

// sendInLoop sends req through rt once per b.Loop iteration, each answer
// a 200, and reports allocations and CPU time per request.
func sendInLoop(b *testing.B, rt http.RoundTripper, req *http.Request) {
	b.ReportAllocs()
	cpu := startCPU()
	for b.Loop() {
		resp, err := rt.RoundTrip(req)
		if err != nil || resp.StatusCode != http.StatusOK {
			b.Fatalf("RoundTrip: %v", err)
		}
	}
	cpu.report(b, b.N) // after b.Loop, b.N is the number of iterations
}

// BenchmarkHotPathParallel is BenchmarkHotPath from GOMAXPROCS goroutines
// sharing one RoundTripper, as the goroutines of a server share a client.
func BenchmarkHotPathParallel(b *testing.B) {
	for _, c := range everyone {
		b.Run(c.name, func(b *testing.B) {
			rt, req := hotPathContender(b, c)
			b.ReportAllocs()
			b.ResetTimer()
			var failures failCount
			cpu := startCPU()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					resp, err := rt.RoundTrip(req)
					if err != nil || resp.StatusCode != http.StatusOK {
						failures.add(err)
						return
					}
				}
			})
			cpu.report(b, b.N)
			failures.check(b)
		})
	}
}

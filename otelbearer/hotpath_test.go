package otelbearer_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/oauth2"

	"github.com/seamlessauth/bearer"
	"github.com/seamlessauth/bearer/otelbearer"
	"github.com/seamlessauth/bearer/store"
)

// okBase answers every request with the same 200, allocating nothing.
type okBase struct{ resp *http.Response }

func (b okBase) RoundTrip(*http.Request) (*http.Response, error) { return b.resp, nil }

// hotTransport is a Transport over okBase with a token valid for an hour,
// instrumented with tel if it is not nil.
func hotTransport(t testing.TB, tel *telemetry) *bearer.Transport {
	t.Helper()
	cfg := bearer.Config{
		Refresher: bearer.RefresherFunc(func(context.Context, *oauth2.Token) (*oauth2.Token, error) {
			return nil, bearer.Permanent(bearer.ErrNoToken)
		}),
		Store: store.NewMemory(&oauth2.Token{AccessToken: "hot", Expiry: time.Now().Add(time.Hour)}),
		Base:  okBase{&http.Response{StatusCode: http.StatusOK, Header: http.Header{}, Body: http.NoBody}},
	}
	if tel != nil {
		require.NoError(t, otelbearer.Instrument(&cfg, tel.options()...))
	}
	tr, err := bearer.New(cfg)
	require.NoError(t, err)
	return tr
}

func hotRequest(t testing.TB) *http.Request {
	t.Helper()
	req, err := http.NewRequestWithContext(context.Background(), http.MethodGet, "https://api.example.com/things", nil)
	require.NoError(t, err)
	return req
}

// send sends req through tr, and fails the test if it does not get the 200.
func send(t testing.TB, tr *bearer.Transport, req *http.Request) {
	resp, err := tr.RoundTrip(req)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("RoundTrip: %v", err)
	}
}

// TestHotPathAllocations: a request with a valid token allocates no more
// through an instrumented Transport than through a plain one.
func TestHotPathAllocations(t *testing.T) {
	tel := newTelemetry(t)
	req := hotRequest(t)
	plain, instrumented := hotTransport(t, nil), hotTransport(t, tel)
	plainAllocs := testing.AllocsPerRun(1000, func() { send(t, plain, req) })
	instrumentedAllocs := testing.AllocsPerRun(1000, func() { send(t, instrumented, req) })
	t.Logf("allocations per request: plain %v, instrumented %v", plainAllocs, instrumentedAllocs)
	assert.LessOrEqual(t, instrumentedAllocs, plainAllocs)
	assert.Empty(t, tel.spans.Ended(), "the hot path made a span")
}

// BenchmarkValidToken compares a request with a valid token through a plain
// and an instrumented Transport; compare them with benchstat -col /contender.
func BenchmarkValidToken(b *testing.B) {
	for _, contender := range []string{"plain", "otelbearer"} {
		b.Run("contender="+contender, func(b *testing.B) {
			var tel *telemetry
			if contender == "otelbearer" {
				tel = newTelemetry(b)
			}
			tr, req := hotTransport(b, tel), hotRequest(b)
			b.ReportAllocs()
			for b.Loop() {
				send(b, tr, req)
			}
		})
	}
}

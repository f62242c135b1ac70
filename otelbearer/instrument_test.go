package otelbearer_test

import (
	"context"
	"net/http"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/codes"
	metricnoop "go.opentelemetry.io/otel/metric/noop"
	"go.opentelemetry.io/otel/trace"
	tracenoop "go.opentelemetry.io/otel/trace/noop"
	"golang.org/x/oauth2"

	"github.com/seamlessauth/bearer"
	"github.com/seamlessauth/bearer/bearertest"
	"github.com/seamlessauth/bearer/otelbearer"
)

const (
	rejectedOK        = "bearer.refresh.outcome=ok,bearer.refresh.reason=rejected"
	rejectedTransient = "bearer.refresh.outcome=transient_failure,bearer.refresh.reason=rejected,error.type=server_error"
	rejectedPermanent = "bearer.refresh.outcome=permanent_failure,bearer.refresh.reason=rejected,error.type=invalid_grant"
)

// TestStorm: 100 concurrent requests whose token the server rejects make one
// refresh, one span with the token request as its child, and 100 retries,
// wherever otelhttp sits.
func TestStorm(t *testing.T) {
	tests := []struct {
		name string
		opts rigOptions
	}{
		{name: "otelhttp on Base", opts: rigOptions{otelBase: true}},
		{name: "otelhttp on TokenClient", opts: rigOptions{tokenClient: true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			const n = 100
			tt.opts.server = bearertest.Options{Rotate: true, ReuseDetection: true}
			tt.opts.rejections = n
			r := newRig(t, bearer.Config{}, tt.opts)
			r.holdTokenRequests(t)
			r.srv.RevokeAccessTokens()

			var wg sync.WaitGroup
			statuses := make([]int, n)
			errs := make([]error, n)
			for i := range n {
				wg.Go(func() { statuses[i], errs[i] = r.get(t.Context()) })
			}
			wg.Wait()
			for i := range n {
				require.NoError(t, errs[i])
				assert.Equal(t, http.StatusOK, statuses[i])
			}
			require.Equal(t, int64(1), r.srv.Stats().Refreshes)

			rm := r.tel.collect(t)
			assert.Equal(t, map[string]int64{rejectedOK: 1}, counts(t, rm, "bearer.refreshes"))
			assert.Equal(t, map[string]uint64{rejectedOK: 1}, histogramCounts(t, rm))
			assert.Equal(t, map[string]int64{"": n}, counts(t, rm, "bearer.retries"))
			assert.Empty(t, counts(t, rm, "bearer.logouts"))
			left, ok := remaining(t, rm)
			require.True(t, ok, "no remaining lifetime after a refresh")
			assert.InDelta(t, bearertest.DefaultAccessTTL.Seconds(), left, 60)

			spans := r.tel.refreshSpans()
			require.Len(t, spans, 1)
			span := spans[0]
			assert.Equal(t, trace.SpanKindInternal, span.SpanKind())
			assert.Equal(t, codes.Unset, span.Status().Code)
			assert.Equal(t, map[string]string{
				"bearer.refresh.reason":   "rejected",
				"bearer.refresh.outcome":  "ok",
				"bearer.refresh.attempts": "1",
			}, attrs(span))
			children := r.tel.children(span)
			require.Len(t, children, 1, "the token request is the refresh span's only child")
			assert.Equal(t, trace.SpanKindClient, children[0].SpanKind())
			assert.Equal(t, http.MethodPost, attrs(children[0])["http.request.method"])
			assert.Equal(t, r.srv.TokenURL, attrs(children[0])["url.full"])

			assertNoTokens(t, r)
		})
	}
}

// TestTransientFailure: a refresh that fails on every attempt is counted as
// a transient failure, with the token endpoint's status and code on its span
// and no logout; the gauge reads nothing until a refresh succeeds.
func TestTransientFailure(t *testing.T) {
	r := newRig(t, bearer.Config{}, rigOptions{otelBase: true})
	r.srv.RevokeAccessTokens()
	r.srv.FailToken(3, bearertest.ServerError(http.StatusServiceUnavailable)) // every attempt of one refresh

	_, err := r.get(t.Context())
	var re *bearer.RefreshError
	require.ErrorAs(t, err, &re)
	require.False(t, re.Permanent)

	rm := r.tel.collect(t)
	assert.Equal(t, map[string]int64{rejectedTransient: 1}, counts(t, rm, "bearer.refreshes"))
	assert.Equal(t, map[string]uint64{rejectedTransient: 1}, histogramCounts(t, rm))
	assert.Empty(t, counts(t, rm, "bearer.retries"))
	assert.Empty(t, counts(t, rm, "bearer.logouts"))
	_, ok := remaining(t, rm)
	assert.False(t, ok, "a remaining lifetime before the first successful refresh")

	spans := r.tel.refreshSpans()
	require.Len(t, spans, 1)
	assert.Equal(t, codes.Error, spans[0].Status().Code)
	assert.Equal(t, "transient_failure", spans[0].Status().Description)
	assert.Equal(t, map[string]string{
		"bearer.refresh.reason":     "rejected",
		"bearer.refresh.outcome":    "transient_failure",
		"bearer.refresh.attempts":   "3",
		"bearer.refresh.error_code": "server_error",
		"http.response.status_code": "503",
		"error.type":                "server_error",
	}, attrs(spans[0]))
	assert.Len(t, r.tel.children(spans[0]), 3, "one token request span per attempt")
	assert.Empty(t, spans[0].Events(), "no error event, which would carry the message")

	// The next request refreshes, and is retried.
	status, err := r.get(t.Context())
	require.NoError(t, err)
	assert.Equal(t, http.StatusOK, status)
	rm = r.tel.collect(t)
	assert.Equal(t, map[string]int64{rejectedTransient: 1, rejectedOK: 1}, counts(t, rm, "bearer.refreshes"))
	assert.Equal(t, map[string]int64{"": 1}, counts(t, rm, "bearer.retries"))
	_, ok = remaining(t, rm)
	assert.True(t, ok, "no remaining lifetime after a refresh")

	assertNoTokens(t, r)
}

// TestLogout: a refresh token that the server rejects is counted as a
// permanent failure and a logout, the session's hook still runs once, and
// the gauge has nothing to read any more.
func TestLogout(t *testing.T) {
	var logouts atomic.Int32
	cfg := bearer.Config{OnLogout: func(context.Context, error) { logouts.Add(1) }}
	r := newRig(t, cfg, rigOptions{otelBase: true})

	r.srv.RevokeAccessTokens()
	_, err := r.get(t.Context()) // a first refresh, so that the gauge reads something
	require.NoError(t, err)
	_, ok := remaining(t, r.tel.collect(t))
	require.True(t, ok)

	r.srv.RevokeAccessTokens()
	r.srv.FailToken(1, bearertest.InvalidGrant())
	_, err = r.get(t.Context())
	var re *bearer.RefreshError
	require.ErrorAs(t, err, &re)
	require.True(t, re.Permanent)
	_, err = r.get(t.Context())
	require.ErrorIs(t, err, bearer.ErrLoggedOut)

	assert.Equal(t, int32(1), logouts.Load(), "the hook set before Instrument")
	rm := r.tel.collect(t)
	assert.Equal(t, map[string]int64{"error.type=invalid_grant": 1}, counts(t, rm, "bearer.logouts"))
	assert.Equal(t, map[string]int64{rejectedOK: 1, rejectedPermanent: 1}, counts(t, rm, "bearer.refreshes"))
	assert.Equal(t, map[string]uint64{rejectedOK: 1, rejectedPermanent: 1}, histogramCounts(t, rm))
	_, ok = remaining(t, rm)
	assert.False(t, ok, "a remaining lifetime after a logout")

	spans := r.tel.refreshSpans()
	require.Len(t, spans, 2)
	failed := spans[1]
	assert.Equal(t, codes.Error, failed.Status().Code)
	assert.Equal(t, "permanent_failure", failed.Status().Description)
	assert.Equal(t, map[string]string{
		"bearer.refresh.reason":     "rejected",
		"bearer.refresh.outcome":    "permanent_failure",
		"bearer.refresh.attempts":   "1",
		"bearer.refresh.error_code": "invalid_grant",
		"http.response.status_code": "400",
		"error.type":                "invalid_grant",
	}, attrs(failed))

	assertNoTokens(t, r)
}

type userKey struct{}

// TestChainsHooks: the hooks set before Instrument are called, with the
// context of the user's OnRefreshStart and the refresh span in it.
func TestChainsHooks(t *testing.T) {
	var (
		mu       sync.Mutex
		starts   []bearer.Reason
		ends     []bearer.RefreshEvent
		values   []any
		spanIDs  []trace.SpanID
		retries  atomic.Int32
		retryReq atomic.Pointer[http.Request]
	)
	cfg := bearer.Config{
		OnRefreshStart: func(ctx context.Context, reason bearer.Reason) context.Context {
			mu.Lock()
			defer mu.Unlock()
			starts = append(starts, reason)
			return context.WithValue(ctx, userKey{}, "mine")
		},
		OnRefresh: func(ctx context.Context, ev bearer.RefreshEvent) {
			mu.Lock()
			defer mu.Unlock()
			ends = append(ends, ev)
			values = append(values, ctx.Value(userKey{}))
			spanIDs = append(spanIDs, trace.SpanFromContext(ctx).SpanContext().SpanID())
		},
		OnRetry: func(req *http.Request) { retries.Add(1); retryReq.Store(req) },
	}
	r := newRig(t, cfg, rigOptions{})
	r.srv.RevokeAccessTokens()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, r.srv.APIURL, nil)
	require.NoError(t, err)
	resp, err := r.tr.RoundTrip(req)
	require.NoError(t, err)
	resp.Body.Close()

	spans := r.tel.refreshSpans()
	require.Len(t, spans, 1)
	mu.Lock()
	defer mu.Unlock()
	assert.Equal(t, []bearer.Reason{bearer.ReasonRejected}, starts)
	require.Len(t, ends, 1)
	assert.NoError(t, ends[0].Err)
	assert.Equal(t, []any{"mine"}, values)
	assert.Equal(t, []trace.SpanID{spans[0].SpanContext().SpanID()}, spanIDs, "the user's OnRefresh runs inside the span")
	assert.Equal(t, int32(1), retries.Load())
	assert.Same(t, req, retryReq.Load())
	assert.Equal(t, map[string]int64{"": 1}, counts(t, r.tel.collect(t), "bearer.retries"))
}

// TestPanickingHooks: a hook set before Instrument that panics still lets
// the refresh be counted, and never leaves the span of the request that
// started the refresh ended by this package.
func TestPanickingHooks(t *testing.T) {
	tests := []struct {
		name      string
		cfg       bearer.Config
		wantSpans int
	}{
		{
			name:      "OnRefreshStart",
			cfg:       bearer.Config{OnRefreshStart: func(context.Context, bearer.Reason) context.Context { panic("user's") }},
			wantSpans: 0,
		},
		{
			name:      "OnRefresh",
			cfg:       bearer.Config{OnRefresh: func(context.Context, bearer.RefreshEvent) { panic("user's") }},
			wantSpans: 1,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newRig(t, tt.cfg, rigOptions{})
			ctx, parent := r.tel.tp.Tracer("test").Start(t.Context(), "caller")
			r.srv.RevokeAccessTokens()
			_, err := r.get(ctx)
			require.NoError(t, err)
			assert.True(t, parent.IsRecording(), "the caller's span was ended")
			parent.End()

			assert.Len(t, r.tel.refreshSpans(), tt.wantSpans)
			assert.Equal(t, map[string]int64{rejectedOK: 1}, counts(t, r.tel.collect(t), "bearer.refreshes"))
		})
	}
}

// TestRefreshSpanParent: the refresh span is a child of the span of the
// request that started it.
func TestRefreshSpanParent(t *testing.T) {
	r := newRig(t, bearer.Config{}, rigOptions{})
	ctx, parent := r.tel.tp.Tracer("test").Start(t.Context(), "caller")
	r.srv.RevokeAccessTokens()
	_, err := r.get(ctx)
	require.NoError(t, err)
	parent.End()

	spans := r.tel.refreshSpans()
	require.Len(t, spans, 1)
	assert.Equal(t, parent.SpanContext().TraceID(), spans[0].SpanContext().TraceID())
	assert.Equal(t, parent.SpanContext().SpanID(), spans[0].Parent().SpanID())
}

// TestGlobalProviders: without options, Instrument uses the global
// providers.
func TestGlobalProviders(t *testing.T) {
	tel := newTelemetry(t)
	otel.SetMeterProvider(tel.mp)
	otel.SetTracerProvider(tel.tp)
	t.Cleanup(func() {
		otel.SetMeterProvider(metricnoop.NewMeterProvider())
		otel.SetTracerProvider(tracenoop.NewTracerProvider())
	})
	cfg := bearer.Config{Refresher: staticRefresher()}
	require.NoError(t, otelbearer.Instrument(&cfg))
	tr, err := bearer.New(cfg)
	require.NoError(t, err)
	_, err = tr.Token(t.Context())
	require.NoError(t, err)

	assert.Equal(t, map[string]int64{"bearer.refresh.outcome=ok,bearer.refresh.reason=no-token": 1},
		counts(t, tel.collect(t), "bearer.refreshes"))
	assert.Len(t, tel.refreshSpans(), 1)
}

// TestInstrumentOnce: a second Instrument of the same Config, which would
// count everything twice, is refused and changes nothing; so is a nil Config.
func TestInstrumentOnce(t *testing.T) {
	tel := newTelemetry(t)
	cfg := bearer.Config{Refresher: staticRefresher()}
	require.NoError(t, otelbearer.Instrument(&cfg, tel.options()...))
	assert.ErrorContains(t, otelbearer.Instrument(&cfg, tel.options()...), "already instrumented")
	tr, err := bearer.New(cfg)
	require.NoError(t, err)
	_, err = tr.Token(t.Context())
	require.NoError(t, err)

	assert.Equal(t, map[string]int64{"bearer.refresh.outcome=ok,bearer.refresh.reason=no-token": 1},
		counts(t, tel.collect(t), "bearer.refreshes"))
	assert.Len(t, tel.refreshSpans(), 1)

	assert.Error(t, otelbearer.Instrument(nil))
}

// staticRefresher hands out a token valid for an hour.
func staticRefresher() bearer.Refresher {
	return bearer.RefresherFunc(func(context.Context, *oauth2.Token) (*oauth2.Token, error) {
		return &oauth2.Token{AccessToken: "token", Expiry: time.Now().Add(time.Hour)}, nil
	})
}

// TestGaugeGoesWithTheConfig: once an instrumented Config and its Transport
// are garbage, the gauge's callback is gone from the meter.
func TestGaugeGoesWithTheConfig(t *testing.T) {
	tel := newTelemetry(t)
	func() {
		cfg := bearer.Config{Refresher: staticRefresher()}
		require.NoError(t, otelbearer.Instrument(&cfg, tel.options()...))
		tr, err := bearer.New(cfg)
		require.NoError(t, err)
		_, err = tr.Token(t.Context())
		require.NoError(t, err)
		_, ok := remaining(t, tel.collect(t))
		require.True(t, ok)
	}()
	// The cleanup runs after a collection, on a goroutine of the runtime's:
	// only polling can see it.
	assert.Eventually(t, func() bool {
		runtime.GC()
		_, ok := remaining(t, tel.collect(t))
		return !ok
	}, 10*time.Second, time.Millisecond)
}

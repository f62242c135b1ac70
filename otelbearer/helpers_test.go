package otelbearer_test

import (
	"context"
	"net/http"
	"regexp"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.uber.org/goleak"
	"golang.org/x/oauth2"

	"github.com/seamlessauth/bearer"
	"github.com/seamlessauth/bearer/bearertest"
	"github.com/seamlessauth/bearer/otelbearer"
	"github.com/seamlessauth/bearer/store"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// telemetry is an in-memory OpenTelemetry pipeline: a manual metric reader
// and a span recorder behind SDK providers, shut down at the end of the test.
type telemetry struct {
	reader *sdkmetric.ManualReader
	mp     *sdkmetric.MeterProvider
	spans  *tracetest.SpanRecorder
	tp     *sdktrace.TracerProvider
}

func newTelemetry(t testing.TB) *telemetry {
	t.Helper()
	tel := &telemetry{reader: sdkmetric.NewManualReader(), spans: tracetest.NewSpanRecorder()}
	tel.mp = sdkmetric.NewMeterProvider(sdkmetric.WithReader(tel.reader))
	tel.tp = sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(tel.spans))
	t.Cleanup(func() {
		ctx := context.WithoutCancel(t.Context())
		assert.NoError(t, tel.tp.Shutdown(ctx))
		assert.NoError(t, tel.mp.Shutdown(ctx))
	})
	return tel
}

// options are the Instrument options that use tel's providers.
func (tel *telemetry) options() []otelbearer.Option {
	return []otelbearer.Option{otelbearer.WithMeterProvider(tel.mp), otelbearer.WithTracerProvider(tel.tp)}
}

// otelhttp wraps rt in otelhttp's transport, on tel's providers.
func (tel *telemetry) otelhttp(rt http.RoundTripper) http.RoundTripper {
	return otelhttp.NewTransport(rt, otelhttp.WithTracerProvider(tel.tp), otelhttp.WithMeterProvider(tel.mp))
}

func (tel *telemetry) collect(t testing.TB) metricdata.ResourceMetrics {
	t.Helper()
	var rm metricdata.ResourceMetrics
	require.NoError(t, tel.reader.Collect(t.Context(), &rm))
	return rm
}

// refreshSpans are the ended spans of shared refreshes.
func (tel *telemetry) refreshSpans() []sdktrace.ReadOnlySpan {
	var out []sdktrace.ReadOnlySpan
	for _, s := range tel.spans.Ended() {
		if s.Name() == "bearer.refresh" {
			out = append(out, s)
		}
	}
	return out
}

// children are the ended spans whose parent is span.
func (tel *telemetry) children(span sdktrace.ReadOnlySpan) []sdktrace.ReadOnlySpan {
	var out []sdktrace.ReadOnlySpan
	for _, s := range tel.spans.Ended() {
		if s.Parent().SpanID() == span.SpanContext().SpanID() {
			out = append(out, s)
		}
	}
	return out
}

// rig is an bearertest server, a Transport on it instrumented with a
// telemetry, and what the test needs to watch them.
type rig struct {
	srv   *bearertest.Server
	tel   *telemetry
	store *recordingStore
	gate  *gate
	tr    *bearer.Transport
}

// rigOptions choose where otelhttp goes: on Base, on TokenClient, or nowhere.
type rigOptions struct {
	server      bearertest.Options
	otelBase    bool // instrument Base with otelhttp
	tokenClient bool // give the Transport a TokenClient of its own, instrumented with otelhttp
	rejections  int  // the gate opens at this many 401s; 0 opens it at once
}

// newRig starts a server, logs in and builds an instrumented Transport from
// cfg, whose hooks may be set.
func newRig(t *testing.T, cfg bearer.Config, o rigOptions) *rig {
	t.Helper()
	r := &rig{srv: bearertest.NewServer(o.server), tel: newTelemetry(t)}
	t.Cleanup(r.srv.Close)
	r.store = newRecordingStore(r.srv.Issue())
	r.gate = newGate(o.rejections)

	conns := &http.Transport{}
	t.Cleanup(conns.CloseIdleConnections)
	var base http.RoundTripper = r.gate.wrap(conns)
	if o.otelBase {
		base = r.tel.otelhttp(base)
	}
	if o.tokenClient {
		tokenConns := &http.Transport{}
		t.Cleanup(tokenConns.CloseIdleConnections)
		cfg.TokenClient = &http.Client{Transport: r.tel.otelhttp(tokenConns)}
	}
	cfg.Base = base
	cfg.Store = r.store
	oc := r.srv.Config()
	oc.Endpoint.AuthStyle = oauth2.AuthStyleInHeader // one token request per attempt
	cfg.Refresher = bearer.OAuth2(oc)
	require.NoError(t, otelbearer.Instrument(&cfg, r.tel.options()...))
	tr, err := bearer.New(cfg)
	require.NoError(t, err)
	t.Cleanup(tr.CloseIdleConnections)
	r.tr = tr
	return r
}

// get sends one API request and reports its status.
func (r *rig) get(ctx context.Context) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, r.srv.APIURL, nil)
	if err != nil {
		return 0, err
	}
	resp, err := r.tr.RoundTrip(req)
	if err != nil {
		return 0, err
	}
	resp.Body.Close()
	return resp.StatusCode, nil
}

// holdTokenRequests makes the server's token endpoint wait until the gate
// opens, so that every request of a storm has been rejected before the
// refresh can end.
func (r *rig) holdTokenRequests(t *testing.T) {
	r.srv.OnToken(func(req *http.Request) {
		select {
		case <-r.gate.open:
		case <-req.Context().Done():
		}
	})
	t.Cleanup(func() { r.srv.OnToken(nil) })
}

// gate is a base RoundTripper that counts the 401 answers it passes on, and
// closes open when it has seen enough.
type gate struct {
	rt   http.RoundTripper
	want int64
	seen atomic.Int64
	open chan struct{}
	once sync.Once
}

func newGate(want int) *gate {
	g := &gate{want: int64(want), open: make(chan struct{})}
	if want <= 0 {
		close(g.open)
	}
	return g
}

func (g *gate) wrap(rt http.RoundTripper) *gate { g.rt = rt; return g }

func (g *gate) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := g.rt.RoundTrip(req)
	if err == nil && resp.StatusCode == http.StatusUnauthorized && g.seen.Add(1) == g.want {
		g.once.Do(func() { close(g.open) })
	}
	return resp, err
}

func (g *gate) CloseIdleConnections() {
	if c, ok := g.rt.(interface{ CloseIdleConnections() }); ok {
		c.CloseIdleConnections()
	}
}

// recordingStore is a memory store that remembers every secret it held, for
// the leak checks.
type recordingStore struct {
	*store.Memory
	mu      sync.Mutex
	secrets []string
}

func newRecordingStore(tok *oauth2.Token) *recordingStore {
	s := &recordingStore{Memory: store.NewMemory(tok)}
	s.remember(tok)
	return s
}

func (s *recordingStore) Save(ctx context.Context, tok *oauth2.Token) error {
	s.remember(tok)
	return s.Memory.Save(ctx, tok)
}

func (s *recordingStore) remember(tok *oauth2.Token) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, v := range []string{tok.AccessToken, tok.RefreshToken} {
		if v != "" {
			s.secrets = append(s.secrets, v)
		}
	}
}

func (s *recordingStore) held() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.secrets...)
}

// mintedSecret matches every token that bearertest mints.
var mintedSecret = regexp.MustCompile(`(` + bearertest.AccessPrefix + `|` + bearertest.RefreshPrefix + `)[A-Z2-7]{26}`)

// assertNoTokens looks at every attribute of every span (its events, links
// and resource included) and of every metric data point and exemplar, and
// at every name and status description, for a token: one the store held,
// or anything bearertest mints.
func assertNoTokens(t *testing.T, r *rig) {
	t.Helper()
	secrets := r.store.held()
	require.NotEmpty(t, secrets)
	var texts []string
	kvs := func(set ...attribute.KeyValue) {
		for _, kv := range set {
			texts = append(texts, string(kv.Key), kv.Value.String())
		}
	}
	spans := r.tel.spans.Ended()
	require.NotEmpty(t, spans)
	for _, s := range spans {
		texts = append(texts, s.Name(), s.Status().Description)
		kvs(s.Attributes()...)
		kvs(s.Resource().Attributes()...)
		for _, e := range s.Events() {
			texts = append(texts, e.Name)
			kvs(e.Attributes...)
		}
		for _, l := range s.Links() {
			kvs(l.Attributes...)
		}
	}
	rm := r.tel.collect(t)
	kvs(rm.Resource.Attributes()...)
	points := 0
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			texts = append(texts, m.Name, m.Description, m.Unit)
			for _, set := range pointAttributes(m.Data) {
				points++
				kvs(set...)
			}
		}
	}
	require.NotZero(t, points)
	for _, text := range texts {
		assert.NotRegexp(t, mintedSecret, text)
		for _, secret := range secrets {
			assert.NotContains(t, text, secret)
		}
	}
}

// pointAttributes lists the attributes of each data point and exemplar in d.
func pointAttributes(d metricdata.Aggregation) [][]attribute.KeyValue {
	var out [][]attribute.KeyValue
	add := func(set attribute.Set, exemplars ...[]attribute.KeyValue) {
		out = append(out, set.ToSlice())
		out = append(out, exemplars...)
	}
	switch d := d.(type) {
	case metricdata.Sum[int64]:
		for _, p := range d.DataPoints {
			add(p.Attributes, exemplarAttributes(p.Exemplars)...)
		}
	case metricdata.Sum[float64]:
		for _, p := range d.DataPoints {
			add(p.Attributes, exemplarAttributes(p.Exemplars)...)
		}
	case metricdata.Gauge[int64]:
		for _, p := range d.DataPoints {
			add(p.Attributes, exemplarAttributes(p.Exemplars)...)
		}
	case metricdata.Gauge[float64]:
		for _, p := range d.DataPoints {
			add(p.Attributes, exemplarAttributes(p.Exemplars)...)
		}
	case metricdata.Histogram[int64]:
		for _, p := range d.DataPoints {
			add(p.Attributes, exemplarAttributes(p.Exemplars)...)
		}
	case metricdata.Histogram[float64]:
		for _, p := range d.DataPoints {
			add(p.Attributes, exemplarAttributes(p.Exemplars)...)
		}
	default:
		panic("pointAttributes: an aggregation it does not know")
	}
	return out
}

func exemplarAttributes[N int64 | float64](es []metricdata.Exemplar[N]) [][]attribute.KeyValue {
	var out [][]attribute.KeyValue
	for _, e := range es {
		out = append(out, e.FilteredAttributes)
	}
	return out
}

// findMetric finds a metric of this package by name.
func findMetric(rm metricdata.ResourceMetrics, name string) (metricdata.Metrics, bool) {
	for _, sm := range rm.ScopeMetrics {
		if sm.Scope.Name != otelbearer.ScopeName {
			continue
		}
		for _, m := range sm.Metrics {
			if m.Name == name {
				return m, true
			}
		}
	}
	return metricdata.Metrics{}, false
}

// counts maps each data point of a counter of this package to its value,
// keyed by its attributes as "k=v,k=v" (sorted by key); an absent counter
// has none.
func counts(t *testing.T, rm metricdata.ResourceMetrics, name string) map[string]int64 {
	t.Helper()
	out := map[string]int64{}
	m, ok := findMetric(rm, name)
	if !ok {
		return out
	}
	sum, ok := m.Data.(metricdata.Sum[int64])
	require.True(t, ok, "%s is a %T", name, m.Data)
	assert.True(t, sum.IsMonotonic, name)
	for _, p := range sum.DataPoints {
		out[key(p.Attributes)] = p.Value
	}
	return out
}

// histogramCounts is counts for the refresh duration histogram: the number
// of refreshes recorded under each attribute set.
func histogramCounts(t *testing.T, rm metricdata.ResourceMetrics) map[string]uint64 {
	t.Helper()
	out := map[string]uint64{}
	m, ok := findMetric(rm, "bearer.refresh.duration")
	if !ok {
		return out
	}
	assert.Equal(t, "s", m.Unit)
	h, ok := m.Data.(metricdata.Histogram[float64])
	require.True(t, ok, "the duration is a %T", m.Data)
	for _, p := range h.DataPoints {
		out[key(p.Attributes)] = p.Count
	}
	return out
}

// remaining reads the remaining-lifetime gauge, if it has a data point.
func remaining(t *testing.T, rm metricdata.ResourceMetrics) (float64, bool) {
	t.Helper()
	m, ok := findMetric(rm, "bearer.token.remaining_lifetime")
	if !ok {
		return 0, false
	}
	g, ok := m.Data.(metricdata.Gauge[float64])
	require.True(t, ok, "the gauge is a %T", m.Data)
	if len(g.DataPoints) == 0 {
		return 0, false
	}
	require.Len(t, g.DataPoints, 1)
	assert.Zero(t, g.DataPoints[0].Attributes.Len())
	return g.DataPoints[0].Value, true
}

func key(set attribute.Set) string {
	var b []byte
	for i, kv := range set.ToSlice() {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, kv.Key...)
		b = append(b, '=')
		b = append(b, kv.Value.String()...)
	}
	return string(b)
}

// attrs maps a span's attributes to their values as text.
func attrs(s sdktrace.ReadOnlySpan) map[string]string {
	out := map[string]string{}
	for _, kv := range s.Attributes() {
		out[string(kv.Key)] = kv.Value.String()
	}
	return out
}

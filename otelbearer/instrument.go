package otelbearer

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"reflect"
	"runtime"
	"sync/atomic"
	"time"
	"weak"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/metric"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/seamlessauth/bearer"
)

// ScopeName is the instrumentation scope of the meter and the tracer.
const ScopeName = "github.com/seamlessauth/bearer/otelbearer"

// spanName is the name of the span of each shared refresh.
const spanName = "bearer.refresh"

// Option configures [Instrument].
type Option interface{ apply(*options) }

type options struct {
	mp metric.MeterProvider
	tp trace.TracerProvider
}

type optionFunc func(*options)

func (f optionFunc) apply(o *options) { f(o) }

// WithMeterProvider sets the provider of the meter. If none is given, or
// mp is nil, the global provider is used.
func WithMeterProvider(mp metric.MeterProvider) Option {
	return optionFunc(func(o *options) {
		if mp != nil {
			o.mp = mp
		}
	})
}

// WithTracerProvider sets the provider of the tracer. If none is given, or
// tp is nil, the global provider is used.
func WithTracerProvider(tp trace.TracerProvider) Option {
	return optionFunc(func(o *options) {
		if tp != nil {
			o.tp = tp
		}
	})
}

// Instrument sets the hooks of cfg so that every [bearer.Transport] made from
// it reports its refreshes, retries and logouts (see the package
// documentation). Hooks already set in cfg are called as before. Call it once
// per Config, before [bearer.New]; it returns an error, and leaves cfg as it
// was, if cfg is nil, already instrumented, or an instrument cannot be made.
//
// The remaining-lifetime gauge follows the last refresh of any Transport made
// from cfg: make one Transport per instrumented Config. Its callback is
// unregistered once cfg and the Transports made from it are garbage.
func Instrument(cfg *bearer.Config, opts ...Option) error {
	if cfg == nil {
		return errors.New("otelbearer: Instrument of a nil Config")
	}
	if instrumented(cfg) {
		return errors.New("otelbearer: the Config is already instrumented")
	}
	o := options{mp: otel.GetMeterProvider(), tp: otel.GetTracerProvider()}
	for _, opt := range opts {
		opt.apply(&o)
	}
	h := &hooks{
		tracer:         o.tp.Tracer(ScopeName, trace.WithSchemaURL(semconv.SchemaURL)),
		onRefreshStart: cfg.OnRefreshStart,
		onRefresh:      cfg.OnRefresh,
		onRetry:        cfg.OnRetry,
		onLogout:       cfg.OnLogout,
	}
	if err := h.instruments(o.mp.Meter(ScopeName, metric.WithSchemaURL(semconv.SchemaURL))); err != nil {
		return fmt.Errorf("otelbearer: %w", err)
	}
	cfg.OnRefreshStart = h.refreshStart
	cfg.OnRefresh = h.refreshEnd
	cfg.OnRetry = h.retry
	cfg.OnLogout = h.logout
	return nil
}

// instrumented reports whether cfg's OnRefresh is already this package's.
// Every method value of hooks.refreshEnd shares one code pointer.
func instrumented(cfg *bearer.Config) bool {
	return cfg.OnRefresh != nil &&
		reflect.ValueOf(cfg.OnRefresh).Pointer() == reflect.ValueOf((*hooks)(nil).refreshEnd).Pointer()
}

// hooks holds the instruments of one instrumented Config and the hooks that
// the Config had before.
type hooks struct {
	tracer    trace.Tracer
	refreshes metric.Int64Counter
	duration  metric.Float64Histogram
	retries   metric.Int64Counter
	logouts   metric.Int64Counter

	// expiry is the Unix time in nanoseconds at which the current token
	// expires; 0 when none is known.
	expiry atomic.Int64

	onRefreshStart func(ctx context.Context, reason bearer.Reason) context.Context
	onRefresh      func(ctx context.Context, ev bearer.RefreshEvent)
	onRetry        func(req *http.Request)
	onLogout       func(ctx context.Context, err error)
}

// instruments makes h's instruments on m, and registers the gauge's callback
// so that it lasts as long as h.
func (h *hooks) instruments(m metric.Meter) error {
	var err error
	if h.refreshes, err = m.Int64Counter("bearer.refreshes",
		metric.WithUnit("{refresh}"),
		metric.WithDescription("Shared token refreshes, counted when they end.")); err != nil {
		return err
	}
	if h.duration, err = m.Float64Histogram("bearer.refresh.duration",
		metric.WithUnit("s"),
		metric.WithDescription("Duration of shared token refreshes, retries included."),
		metric.WithExplicitBucketBoundaries(0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10, 30)); err != nil {
		return err
	}
	if h.retries, err = m.Int64Counter("bearer.retries",
		metric.WithUnit("{request}"),
		metric.WithDescription("Requests sent again with a new token after the server rejected theirs.")); err != nil {
		return err
	}
	if h.logouts, err = m.Int64Counter("bearer.logouts",
		metric.WithUnit("{logout}"),
		metric.WithDescription("Sessions ended by a permanent refresh failure.")); err != nil {
		return err
	}
	remaining, err := m.Float64ObservableGauge("bearer.token.remaining_lifetime",
		metric.WithUnit("s"),
		metric.WithDescription("Time until the current access token expires, as of its last refresh."))
	if err != nil {
		return err
	}
	// The callback holds h weakly, so that the meter does not keep the
	// hooks, and with them the Config, alive; a cleanup unregisters it.
	wh := weak.Make(h)
	reg, err := m.RegisterCallback(func(_ context.Context, o metric.Observer) error {
		if h := wh.Value(); h != nil {
			if left, ok := h.remaining(time.Now()); ok {
				o.ObserveFloat64(remaining, left.Seconds())
			}
		}
		return nil
	}, remaining)
	if err != nil {
		return err
	}
	runtime.AddCleanup(h, func(reg metric.Registration) {
		if err := reg.Unregister(); err != nil {
			otel.Handle(err)
		}
	}, reg)
	return nil
}

// refreshStart starts the refresh span, after the hook that was set before,
// so that the span is in the context the refresh runs with.
func (h *hooks) refreshStart(ctx context.Context, reason bearer.Reason) context.Context {
	if h.onRefreshStart != nil {
		if c := h.onRefreshStart(ctx, reason); c != nil {
			ctx = c
		}
	}
	ctx, span := h.tracer.Start(ctx, spanName,
		trace.WithSpanKind(trace.SpanKindInternal),
		trace.WithAttributes(reasonKey.String(reason.String())))
	return context.WithValue(ctx, spanKey{}, span)
}

// spanKey marks the refresh span in the refresh's context, so that
// refreshEnd never ends a span it did not start (such as the span of the
// request that started the refresh, when refreshStart did not run).
type spanKey struct{}

// refreshEnd calls the hook that was set before, inside the span, then
// records the refresh and ends the span, even if that hook panics.
func (h *hooks) refreshEnd(ctx context.Context, ev bearer.RefreshEvent) {
	defer h.record(ctx, ev)
	if h.onRefresh != nil {
		h.onRefresh(ctx, ev)
	}
}

func (h *hooks) record(ctx context.Context, ev bearer.RefreshEvent) {
	f := describe(ev)
	set := f.metricSet()
	h.refreshes.Add(ctx, 1, metric.WithAttributeSet(set))
	h.duration.Record(ctx, ev.Duration.Seconds(), metric.WithAttributeSet(set))
	h.track(ev, f.outcome)
	if span, ok := ctx.Value(spanKey{}).(trace.Span); ok {
		f.end(span)
	}
}

// track keeps the expiry of the current token for the gauge: a new token's,
// none after a logout, the same one after a transient failure.
func (h *hooks) track(ev bearer.RefreshEvent, outcome string) {
	switch {
	case outcome == outcomeTransient:
	case outcome == outcomePermanent, ev.Expiry.IsZero():
		h.expiry.Store(0)
	default:
		h.expiry.Store(ev.Expiry.UnixNano())
	}
}

// remaining is the current token's lifetime left at now, if it is known.
func (h *hooks) remaining(now time.Time) (time.Duration, bool) {
	e := h.expiry.Load()
	if e == 0 {
		return 0, false
	}
	return time.Unix(0, e).Sub(now), true
}

func (h *hooks) retry(req *http.Request) {
	h.retries.Add(req.Context(), 1)
	if h.onRetry != nil {
		h.onRetry(req)
	}
}

func (h *hooks) logout(ctx context.Context, err error) {
	var re *bearer.RefreshError
	errors.As(err, &re)
	h.logouts.Add(ctx, 1, metric.WithAttributes(errorType(re)))
	if h.onLogout != nil {
		h.onLogout(ctx, err)
	}
}

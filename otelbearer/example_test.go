package otelbearer_test

import (
	"context"
	"fmt"
	"log"
	"net/http"

	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/seamlessauth/bearer"
	"github.com/seamlessauth/bearer/bearertest"
	"github.com/seamlessauth/bearer/otelbearer"
	"github.com/seamlessauth/bearer/store"
)

// The API rejects the token: the Transport refreshes it, in a span whose
// child is the token request that otelhttp traces, and sends the request
// again. An in-memory reader and recorder stand in for exporters.
func Example() {
	srv := bearertest.NewServer(bearertest.Options{})
	defer srv.Close()
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	spans := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(spans))

	cfg := bearer.Config{
		Refresher:   bearer.OAuth2(srv.Config()),
		Store:       store.NewMemory(srv.Issue()),
		TokenClient: &http.Client{Transport: otelhttp.NewTransport(srv.Client().Transport, otelhttp.WithTracerProvider(tp))},
	}
	if err := otelbearer.Instrument(&cfg, otelbearer.WithMeterProvider(mp), otelbearer.WithTracerProvider(tp)); err != nil {
		log.Fatal(err)
	}
	tr, err := bearer.New(cfg)
	if err != nil {
		log.Fatal(err)
	}

	srv.RevokeAccessTokens()
	resp, err := tr.Client().Get(srv.APIURL)
	if err != nil {
		log.Fatal(err)
	}
	resp.Body.Close()
	fmt.Println(resp.Status)

	var rm metricdata.ResourceMetrics
	if err := reader.Collect(context.Background(), &rm); err != nil {
		log.Fatal(err)
	}
	enc := attribute.DefaultEncoder()
	for _, m := range rm.ScopeMetrics[0].Metrics {
		switch d := m.Data.(type) {
		case metricdata.Sum[int64]:
			fmt.Printf("%s{%s} %d\n", m.Name, d.DataPoints[0].Attributes.Encoded(enc), d.DataPoints[0].Value)
		case metricdata.Histogram[float64]:
			fmt.Printf("%s{%s} count %d\n", m.Name, d.DataPoints[0].Attributes.Encoded(enc), d.DataPoints[0].Count)
		case metricdata.Gauge[float64]:
			fmt.Printf("%s about an hour: %t\n", m.Name, d.DataPoints[0].Value > 3500)
		}
	}
	ended := spans.Ended() // the token request's span ends first
	fmt.Printf("span %s, child %s: %t\n", ended[1].Name(), ended[0].Name(),
		ended[0].Parent().SpanID() == ended[1].SpanContext().SpanID())
	// Output:
	// 200 OK
	// bearer.refreshes{bearer.refresh.outcome=ok,bearer.refresh.reason=rejected} 1
	// bearer.refresh.duration{bearer.refresh.outcome=ok,bearer.refresh.reason=rejected} count 1
	// bearer.retries{} 1
	// bearer.token.remaining_lifetime about an hour: true
	// span bearer.refresh, child HTTP POST: true
}

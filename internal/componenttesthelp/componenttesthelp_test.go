package componenttesthelp

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/extension/extensionauth"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/anvil/anvilcol/internal/e2etest"
	"github.com/anvil/anvilcol/internal/httpexport"
)

func TestCounterSumsPointsMatchingAllPairs(t *testing.T) {
	tel := NewTelemetry(t)
	c, err := tel.NewTelemetrySettings().MeterProvider.Meter("test").Int64Counter("requests")
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	c.Add(ctx, 1, metric.WithAttributes(attribute.String("api", "a"), attribute.String("outcome", "ok")))
	c.Add(ctx, 2, metric.WithAttributes(attribute.String("api", "a"), attribute.String("outcome", "retryable")))
	c.Add(ctx, 4, metric.WithAttributes(attribute.String("api", "b"), attribute.String("outcome", "retryable")))
	for _, tc := range []struct {
		kv   []string
		want int64
	}{
		{nil, 7},
		{[]string{"outcome", "retryable"}, 6},
		{[]string{"api", "a", "outcome", "retryable"}, 2},
		{[]string{"api", "c"}, 0},
	} {
		if got := tel.Counter(t, "requests", tc.kv...); got != tc.want {
			t.Errorf("Counter(requests, %q) = %d, want %d", tc.kv, got, tc.want)
		}
	}
	if got := tel.Counter(t, "never_recorded"); got != 0 {
		t.Errorf("unrecorded counter = %d, want 0", got)
	}
}

func TestWaitCounterReturnsOnceReachedOrAtTimeout(t *testing.T) {
	tel := NewTelemetry(t)
	// An observable counter that grows by one each time it is read, up to 3:
	// WaitCounter reaches 3 only by reading again (no timing involved).
	var reads int64
	_, err := tel.NewTelemetrySettings().MeterProvider.Meter("test").Int64ObservableCounter("attempts",
		metric.WithInt64Callback(func(_ context.Context, o metric.Int64Observer) error {
			reads++
			o.Observe(min(reads, 3))
			return nil
		}))
	if err != nil {
		t.Fatal(err)
	}
	if n := tel.WaitCounter(t, 5*time.Second, 3, "attempts"); n != 3 || reads != 3 {
		t.Errorf("WaitCounter = %d after %d reads, want 3 after 3", n, reads)
	}
	start := time.Now()
	if n := tel.WaitCounter(t, 100*time.Millisecond, 10, "attempts"); n != 3 {
		t.Errorf("WaitCounter past timeout = %d, want the last value 3", n)
	}
	if d := time.Since(start); d < 100*time.Millisecond {
		t.Errorf("WaitCounter gave up after %v, before its timeout", d)
	}
}

func TestGaugeAndQueueDrained(t *testing.T) {
	tel := NewTelemetry(t)
	if _, ok := tel.Gauge(t, "otelcol_exporter_queue_size"); ok || tel.QueueDrained(t) {
		t.Error("an unreported queue counts as drained")
	}
	m := tel.NewTelemetrySettings().MeterProvider.Meter("test")
	queuedA, queuedB := int64(2), int64(1)
	_, err := m.Int64ObservableGauge("otelcol_exporter_queue_size",
		metric.WithInt64Callback(func(_ context.Context, o metric.Int64Observer) error {
			o.Observe(queuedA, metric.WithAttributes(attribute.String("exporter", "a")))
			o.Observe(queuedB, metric.WithAttributes(attribute.String("exporter", "b")))
			return nil
		}))
	if err != nil {
		t.Fatal(err)
	}
	inFlight, err := m.Int64UpDownCounter("otelcol_exporter_in_flight_requests")
	if err != nil {
		t.Fatal(err)
	}
	if n, ok := tel.Gauge(t, "otelcol_exporter_queue_size", "exporter", "a"); !ok || n != 2 {
		t.Errorf("Gauge{exporter=a} = %d, %v", n, ok)
	}
	if n, _ := tel.Gauge(t, "otelcol_exporter_queue_size"); n != 3 || tel.QueueDrained(t) {
		t.Errorf("Gauge = %d; drained %v with batches queued", n, tel.QueueDrained(t))
	}
	queuedA, queuedB = 0, 0
	inFlight.Add(context.Background(), 1)
	if tel.QueueDrained(t) {
		t.Error("drained with a request in flight")
	}
	inFlight.Add(context.Background(), -1)
	if !tel.QueueDrained(t) {
		t.Error("not drained with nothing queued or in flight")
	}
}

func TestSyncFastRetryDisablesQueueAndShortensRetry(t *testing.T) {
	c := httpexport.NewDefaultConfig()
	SyncFastRetry(&c, "http://127.0.0.1:1")
	if c.QueueConfig.HasValue() {
		t.Error("sending queue still enabled")
	}
	r := c.RetryConfig
	if c.ClientConfig.Endpoint != "http://127.0.0.1:1" || !r.Enabled || r.InitialInterval != 10*time.Millisecond || r.MaxInterval != 50*time.Millisecond || r.MaxElapsedTime != 10*time.Second {
		t.Errorf("endpoint %q, retry = %+v", c.ClientConfig.Endpoint, r)
	}
	if DefaultTransport(c) {
		t.Error("DefaultTransport holds without the default queue")
	}
	if d := httpexport.NewDefaultConfig(); !DefaultTransport(d) {
		t.Error("DefaultTransport does not hold for the default")
	}
}

func TestStartBearerTokenAuthAddsTheToken(t *testing.T) {
	host := StartBearerTokenAuth(t, "tok-9")
	ext, ok := host.GetExtensions()[BearerTokenAuthID].(extensionauth.HTTPClient)
	if !ok {
		t.Fatalf("host has no HTTP client authenticator under %v", BearerTokenAuthID)
	}
	rt, err := ext.RoundTripper(http.DefaultTransport)
	if err != nil {
		t.Fatal(err)
	}
	in := e2etest.NewIntake(t)
	resp, err := (&http.Client{Transport: rt}).Get(in.URL + "/x")
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	if got := in.Requests()[0].Header.Get("Authorization"); got != "Bearer tok-9" {
		t.Errorf("Authorization = %q, want Bearer tok-9", got)
	}
}

type demoConfig struct {
	Size int `mapstructure:"size"`
}

func (c *demoConfig) Validate() error {
	if c.Size <= 0 {
		return fmt.Errorf("`size` must be positive, got %d", c.Size)
	}
	return nil
}

func TestLoadConfigUnmarshalsOverDefaultsAndValidates(t *testing.T) {
	cfg := &demoConfig{Size: 1}
	if err := LoadConfig(t, component.MustNewID("demo"), cfg); err != nil || cfg.Size != 3 {
		t.Errorf("demo: size %d err %v, want 3 and valid", cfg.Size, err)
	}
	cfg = &demoConfig{Size: 1}
	if err := LoadConfig(t, component.MustNewIDWithName("demo", "invalid"), cfg); err == nil || !strings.Contains(err.Error(), "`size` must be positive") {
		t.Errorf("demo/invalid: err %v, want the Validate error", err)
	}
}

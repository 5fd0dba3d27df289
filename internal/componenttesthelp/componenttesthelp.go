// Package componenttesthelp holds the in-process test scaffolding that several
// anvilcol components' unit tests share: loading testdata/config.yaml,
// own-telemetry capture with an observed logger, counter and gauge read-out
// (and whether exporterhelper's queues are drained), creating and starting
// exporters and other components on a host, the exporter config a
// synchronous test wants, and a started bearertokenauth extension. Fake
// intakes are built on e2etest.Intake; the restart harness is durabletest.
package componenttesthelp // import "github.com/anvil/anvilcol/internal/componenttesthelp"

import (
	"context"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/open-telemetry/opentelemetry-collector-contrib/extension/bearertokenauthextension"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/config/configopaque"
	"go.opentelemetry.io/collector/config/configoptional"
	"go.opentelemetry.io/collector/confmap/confmaptest"
	"go.opentelemetry.io/collector/confmap/xconfmap"
	"go.opentelemetry.io/collector/exporter"
	"go.opentelemetry.io/collector/exporter/exporterhelper"
	"go.opentelemetry.io/collector/exporter/exportertest"
	"go.opentelemetry.io/collector/extension/extensiontest"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/anvil/anvilcol/internal/durabletest"
	"github.com/anvil/anvilcol/internal/httpexport"
)

// LoadConfig unmarshals the section id (e.g. "foundation/full") of the
// package's testdata/config.yaml over cfg, which should be the factory's
// default config, and returns the result of validating it (nil if valid).
// A missing file or section, or a key cfg does not have, fails the test.
func LoadConfig(t testing.TB, id component.ID, cfg component.Config) error {
	t.Helper()
	cm, err := confmaptest.LoadConf(filepath.Join("testdata", "config.yaml"))
	if err != nil {
		t.Fatalf("componenttesthelp: %v", err)
	}
	sub, err := cm.Sub(id.String())
	if err != nil {
		t.Fatalf("componenttesthelp: section %s: %v", id, err)
	}
	if err := sub.Unmarshal(cfg); err != nil {
		t.Fatalf("componenttesthelp: unmarshalling %s: %v", id, err)
	}
	return xconfmap.Validate(cfg)
}

// LoadFactoryConfig is LoadConfig of the section name ("" for the bare
// type) of f's type over f's default config, returned as C.
func LoadFactoryConfig[C component.Config](t testing.TB, f component.Factory, name string) (C, error) {
	t.Helper()
	cfg := f.CreateDefaultConfig().(C)
	return cfg, LoadConfig(t, component.NewIDWithName(f.Type(), name), cfg)
}

// Telemetry is a componenttest.Telemetry (pass Telemetry.Telemetry to the
// component's metadatatest.NewSettings) with a logger whose entries, from
// debug level up, are kept in Logs.
type Telemetry struct {
	*componenttest.Telemetry
	Logger *zap.Logger
	Logs   *observer.ObservedLogs
}

// NewTelemetry returns a fresh Telemetry, shut down at the end of the test.
func NewTelemetry(t testing.TB) *Telemetry {
	t.Helper()
	tel := componenttest.NewTelemetry()
	t.Cleanup(func() { _ = tel.Shutdown(context.Background()) })
	core, logs := observer.New(zapcore.DebugLevel)
	return &Telemetry{Telemetry: tel, Logger: zap.New(core), Logs: logs}
}

// Counter sums the int64 counter name over the points whose attributes
// include all of kv (pairs of key, value; none = every point). A counter
// that was never recorded is 0.
func (tel *Telemetry) Counter(t testing.TB, name string, kv ...string) int64 {
	t.Helper()
	dps, _ := tel.intPoints(t, name, kv, false)
	return sumMatching(dps, kv)
}

// Gauge sums the int64 gauge name like Counter, and says whether the gauge
// was reported at all (an observable gauge is only there once its callback
// has run).
func (tel *Telemetry) Gauge(t testing.TB, name string, kv ...string) (int64, bool) {
	t.Helper()
	dps, ok := tel.intPoints(t, name, kv, true)
	return sumMatching(dps, kv), ok
}

// intPoints returns the points of the int64 counter (or gauge) name and
// whether it was recorded; another kind of instrument fails the test.
func (tel *Telemetry) intPoints(t testing.TB, name string, kv []string, gauge bool) ([]metricdata.DataPoint[int64], bool) {
	t.Helper()
	if len(kv)%2 != 0 {
		t.Fatalf("componenttesthelp: %s wants key, value pairs, got %q", name, kv)
	}
	m, err := tel.GetMetric(name)
	if err != nil {
		return nil, false
	}
	if g, ok := m.Data.(metricdata.Gauge[int64]); ok && gauge {
		return g.DataPoints, true
	}
	if s, ok := m.Data.(metricdata.Sum[int64]); ok && !gauge {
		return s.DataPoints, true
	}
	kind := map[bool]string{false: "counter", true: "gauge"}[gauge]
	t.Fatalf("componenttesthelp: %s is a %T, not an int64 %s", name, m.Data, kind)
	return nil, false
}

// sumMatching sums the points whose attributes include all of kv.
func sumMatching(dps []metricdata.DataPoint[int64], kv []string) int64 {
	var n int64
next:
	for _, dp := range dps {
		for i := 0; i+1 < len(kv); i += 2 {
			if v, ok := dp.Attributes.Value(attribute.Key(kv[i])); !ok || v.AsString() != kv[i+1] {
				continue next
			}
		}
		n += dp.Value
	}
	return n
}

// WaitCounter polls Counter(name, kv...) until it reaches atLeast or timeout
// passes, and returns the last value read (the caller decides whether a
// smaller one fails the test).
func (tel *Telemetry) WaitCounter(t testing.TB, timeout time.Duration, atLeast int64, name string, kv ...string) int64 {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		n := tel.Counter(t, name, kv...)
		if n >= atLeast || time.Now().After(deadline) {
			return n
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// QueueDrained says whether exporterhelper's own telemetry on tel shows
// every exporter's sending queue reported and empty with no request in
// flight: nothing is left that could still be sent.
func (tel *Telemetry) QueueDrained(t testing.TB) bool {
	t.Helper()
	queued, reported := tel.Gauge(t, "otelcol_exporter_queue_size")
	return reported && queued == 0 && tel.Counter(t, "otelcol_exporter_in_flight_requests") == 0
}

// ExporterSettings are nop settings for the exporter with id typ (no name:
// the same id in every run, so a persistent queue is found again after a
// restart) whose own telemetry and log are tel's (the generated
// metadatatest.NewSettings, with the observed logger).
func (tel *Telemetry) ExporterSettings(typ component.Type) exporter.Settings {
	set := exportertest.NewNopSettings(typ)
	set.ID = component.NewID(typ)
	set.TelemetrySettings = tel.NewTelemetrySettings()
	set.Logger = tel.Logger
	return set
}

// NewExporter creates the exporter of cfg with create (a factory's
// CreateMetrics, CreateLogs, ...) on tel.ExporterSettings(typ) and starts it
// on host (a nop host if nil). It does not shut it down.
func NewExporter[E component.Component](t testing.TB, tel *Telemetry, typ component.Type,
	create func(context.Context, exporter.Settings, component.Config) (E, error), cfg component.Config, host component.Host,
) E {
	t.Helper()
	e, err := create(context.Background(), tel.ExporterSettings(typ), cfg)
	if err != nil {
		t.Fatalf("componenttesthelp: creating the %s exporter: %v", typ, err)
	}
	Start(t, host, e)
	return e
}

// Start starts every component on host (a nop host if nil), failing the test
// if one does not start. It does not shut them down.
func Start(t testing.TB, host component.Host, comps ...component.Component) {
	t.Helper()
	if host == nil {
		host = componenttest.NewNopHost()
	}
	for _, c := range comps {
		if err := c.Start(context.Background(), host); err != nil {
			t.Fatalf("componenttesthelp: starting %T: %v", c, err)
		}
	}
}

// SyncFastRetry sets an HTTP exporter's transport for unit tests: the
// endpoint, no sending queue, so Consume* runs the export synchronously and
// returns its error, and fast retries (10ms initial, 50ms max interval) for
// at most 10s.
func SyncFastRetry(cfg *httpexport.Config, endpoint string) {
	cfg.ClientConfig.Endpoint = endpoint
	cfg.QueueConfig = configoptional.None[exporterhelper.QueueBatchConfig]()
	cfg.RetryConfig.InitialInterval = 10 * time.Millisecond
	cfg.RetryConfig.MaxInterval = 50 * time.Millisecond
	cfg.RetryConfig.MaxElapsedTime = 10 * time.Second
}

// DefaultTransport says whether c is httpexport's default but for the
// endpoint (every loaded test config sets one).
func DefaultTransport(c httpexport.Config) bool {
	want := httpexport.NewDefaultConfig()
	want.ClientConfig.Endpoint = c.ClientConfig.Endpoint
	return reflect.DeepEqual(c, want)
}

// BearerTokenAuthID is the ID StartBearerTokenAuth registers its extension
// under; point confighttp's auth.authenticator at it.
var BearerTokenAuthID = component.MustNewID("bearertokenauth")

// StartBearerTokenAuth starts a real bearertokenauth extension sending token
// and returns a host that provides it as BearerTokenAuthID. The extension is
// shut down at the end of the test.
func StartBearerTokenAuth(t testing.TB, token string) component.Host {
	t.Helper()
	f := bearertokenauthextension.NewFactory()
	cfg := f.CreateDefaultConfig().(*bearertokenauthextension.Config)
	cfg.BearerToken = configopaque.String(token)
	ext, err := f.Create(context.Background(), extensiontest.NewNopSettings(f.Type()), cfg)
	if err != nil {
		t.Fatalf("componenttesthelp: creating bearertokenauth: %v", err)
	}
	host := &durabletest.Host{Extensions: map[component.ID]component.Component{BearerTokenAuthID: ext}}
	if err := ext.Start(context.Background(), host); err != nil {
		t.Fatalf("componenttesthelp: starting bearertokenauth: %v", err)
	}
	t.Cleanup(func() { _ = ext.Shutdown(context.Background()) })
	return host
}

// Package componenttesthelp holds the in-process test scaffolding that several
// anvilcol components' unit tests share: loading testdata/config.yaml,
// own-telemetry capture with an observed logger, counter read-out, starting
// components on a host, the exporter config a synchronous test wants, and a
// started bearertokenauth extension. Fake intakes are built on e2etest.Intake; the restart harness
// is durabletest.
package componenttesthelp // import "github.com/anvil/anvilcol/internal/componenttesthelp"

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/open-telemetry/opentelemetry-collector-contrib/extension/bearertokenauthextension"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/config/configopaque"
	"go.opentelemetry.io/collector/config/configoptional"
	"go.opentelemetry.io/collector/config/configretry"
	"go.opentelemetry.io/collector/confmap/confmaptest"
	"go.opentelemetry.io/collector/confmap/xconfmap"
	"go.opentelemetry.io/collector/exporter/exporterhelper"
	"go.opentelemetry.io/collector/extension/extensiontest"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/anvil/anvilcol/internal/durabletest"
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
	if len(kv)%2 != 0 {
		t.Fatalf("componenttesthelp: Counter(%s) wants key, value pairs, got %q", name, kv)
	}
	m, err := tel.GetMetric(name)
	if err != nil {
		return 0
	}
	sum, ok := m.Data.(metricdata.Sum[int64])
	if !ok {
		t.Fatalf("componenttesthelp: %s is a %T, not an int64 counter", name, m.Data)
	}
	var n int64
next:
	for _, dp := range sum.DataPoints {
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

// SyncFastRetry sets an exporterhelper-based exporter's queue and retry
// settings for unit tests: no sending queue, so Consume* runs the export
// synchronously and returns its error, and retries fast (10ms initial, 50ms
// max interval) for at most 10s.
func SyncFastRetry(queue *configoptional.Optional[exporterhelper.QueueBatchConfig], retry *configretry.BackOffConfig) {
	*queue = configoptional.None[exporterhelper.QueueBatchConfig]()
	retry.InitialInterval = 10 * time.Millisecond
	retry.MaxInterval = 50 * time.Millisecond
	retry.MaxElapsedTime = 10 * time.Second
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

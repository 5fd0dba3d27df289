package alertprocessor

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/processor"
	"go.opentelemetry.io/collector/processor/processortest"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/anvil/anvilcol/internal/clock/clocktest"
	"github.com/anvil/anvilcol/processor/alertprocessor/internal/metadata"
)

// fakeClock is the controllable clock of the engine and notifier tests.
type fakeClock = clocktest.Fake

func newFakeClock() *fakeClock {
	return clocktest.NewFake(time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC))
}

// runClock moves clk to each time something waits for until done holds
// (clocktest.Fake.RunUntil).
func runClock(t *testing.T, clk *fakeClock, done func() bool) { clk.RunUntil(t, done) }

func testConfig(rules ...RuleConfig) *Config {
	cfg := createDefaultConfig().(*Config)
	cfg.EvaluationInterval = 10 * time.Second
	cfg.Rules = rules
	return cfg
}

// testSettings are nop processor settings under the test's own component
// id, so every test has its own shared engine.
func testSettings(t testing.TB) processor.Settings {
	set := processortest.NewNopSettings(metadata.Type)
	set.ID = component.MustNewIDWithName("alert", t.Name())
	return set
}

// newTestLogs creates cfg's logs processor (to a nop consumer) under
// testSettings.
func newTestLogs(t *testing.T, cfg *Config) processor.Logs {
	t.Helper()
	p, err := NewFactory().CreateLogs(context.Background(), testSettings(t), cfg, consumertest.NewNop())
	require.NoError(t, err)
	return p
}

// newTestEngine builds an engine on a fake clock with its own telemetry.
func newTestEngine(t *testing.T, cfg *Config) (*engine, *fakeClock, *componenttest.Telemetry) {
	t.Helper()
	require.NoError(t, cfg.Validate())
	clk := newFakeClock()
	tt := componenttest.NewTelemetry()
	t.Cleanup(func() { _ = tt.Shutdown(t.Context()) })
	e, err := newEngine(cfg, tt.NewTelemetrySettings(), clk)
	require.NoError(t, err)
	return e, clk, tt
}

// tick advances the clock one evaluation interval and evaluates.
func tick(e *engine, clk *fakeClock) []Notification {
	clk.Advance(e.cfg.EvaluationInterval)
	return e.evaluateRules()
}

// eventLogs builds one log record per value of the event, with attributes.
func eventLogs(name string, field string, attrs map[string]string, values ...float64) plog.Logs {
	ld := plog.NewLogs()
	lrs := ld.ResourceLogs().AppendEmpty().ScopeLogs().AppendEmpty().LogRecords()
	for _, v := range values {
		lr := lrs.AppendEmpty()
		lr.SetEventName(name)
		if field != "" {
			lr.Body().SetEmptyMap().PutDouble(field, v)
		}
		for k, a := range attrs {
			lr.Attributes().PutStr(k, a)
		}
	}
	return ld
}

func gaugeMetrics(name string, attrs map[string]string, values ...float64) pmetric.Metrics {
	md := pmetric.NewMetrics()
	m := md.ResourceMetrics().AppendEmpty().ScopeMetrics().AppendEmpty().Metrics().AppendEmpty()
	m.SetName(name)
	dps := m.SetEmptyGauge().DataPoints()
	for _, v := range values {
		dp := dps.AppendEmpty()
		dp.SetDoubleValue(v)
		for k, a := range attrs {
			dp.Attributes().PutStr(k, a)
		}
	}
	return md
}

func sumMetrics(name string, temporality pmetric.AggregationTemporality, start pcommon.Timestamp, v int64) pmetric.Metrics {
	md := pmetric.NewMetrics()
	m := md.ResourceMetrics().AppendEmpty().ScopeMetrics().AppendEmpty().Metrics().AppendEmpty()
	m.SetName(name)
	s := m.SetEmptySum()
	s.SetIsMonotonic(true)
	s.SetAggregationTemporality(temporality)
	dp := s.DataPoints().AppendEmpty()
	dp.SetStartTimestamp(start)
	dp.SetIntValue(v)
	return md
}

func histogramMetrics(name string, temporality pmetric.AggregationTemporality, start pcommon.Timestamp, bounds []float64, counts []uint64, sum float64) pmetric.Metrics {
	md := pmetric.NewMetrics()
	m := md.ResourceMetrics().AppendEmpty().ScopeMetrics().AppendEmpty().Metrics().AppendEmpty()
	m.SetName(name)
	h := m.SetEmptyHistogram()
	h.SetAggregationTemporality(temporality)
	dp := h.DataPoints().AppendEmpty()
	dp.SetStartTimestamp(start)
	dp.ExplicitBounds().FromRaw(bounds)
	dp.BucketCounts().FromRaw(counts)
	var n uint64
	for _, c := range counts {
		n += c
	}
	dp.SetCount(n)
	dp.SetSum(sum)
	return md
}

// counterValue sums an own-telemetry metric's points whose attributes include want.
func counterValue(t *testing.T, tt *componenttest.Telemetry, name string, want ...attribute.KeyValue) int64 {
	t.Helper()
	m, err := tt.GetMetric(name)
	if err != nil {
		return 0
	}
	var dps []metricdata.DataPoint[int64]
	switch d := m.Data.(type) {
	case metricdata.Sum[int64]:
		dps = d.DataPoints
	case metricdata.Gauge[int64]:
		dps = d.DataPoints
	}
	var total int64
	for _, dp := range dps {
		ok := true
		for _, kv := range want {
			if v, found := dp.Attributes.Value(kv.Key); !found || v != kv.Value {
				ok = false
			}
		}
		if ok {
			total += dp.Value
		}
	}
	return total
}

func statuses(ns []Notification) []string {
	out := make([]string, len(ns))
	for i, n := range ns {
		out[i] = n.Status
		if n.Repeat {
			out[i] += "(repeat)"
		}
	}
	return out
}

package alertprocessor

import (
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
)

// fakeClock is the controllable clock of the engine tests.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock() *fakeClock {
	return &fakeClock{t: time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func testConfig(rules ...RuleConfig) *Config {
	cfg := createDefaultConfig().(*Config)
	cfg.EvaluationInterval = 10 * time.Second
	cfg.Rules = rules
	return cfg
}

// newTestEngine builds an engine on a fake clock with its own telemetry.
func newTestEngine(t *testing.T, cfg *Config) (*engine, *fakeClock, *componenttest.Telemetry) {
	t.Helper()
	require.NoError(t, cfg.Validate())
	clk := newFakeClock()
	tt := componenttest.NewTelemetry()
	t.Cleanup(func() { _ = tt.Shutdown(t.Context()) })
	e, err := newEngine(cfg, tt.NewTelemetrySettings(), clk.Now)
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

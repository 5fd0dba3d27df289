package cardinalityguardprocessor

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"

	"github.com/anvil/anvilcol/internal/clock/clocktest"
)

type harness struct {
	g     *guard
	clock *clocktest.Fake
	tel   *componenttest.Telemetry
}

func newHarness(t testing.TB, mutate func(*Config)) *harness {
	t.Helper()
	cfg := createDefaultConfig().(*Config)
	if mutate != nil {
		mutate(cfg)
	}
	require.NoError(t, cfg.Validate())
	tel := componenttest.NewTelemetry()
	clock := clocktest.NewFake(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	g, err := newGuard(tel.NewTelemetrySettings(), cfg, clock)
	require.NoError(t, err)
	t.Cleanup(func() {
		_ = g.shutdown(context.Background())
		_ = tel.Shutdown(context.Background())
	})
	return &harness{g: g, clock: clock, tel: tel}
}

func (h *harness) process(t testing.TB, md pmetric.Metrics) pmetric.Metrics {
	t.Helper()
	out, err := h.g.processMetrics(context.Background(), md)
	require.NoError(t, err)
	return out
}

// pt is one test point; attrs values are strings.
type pt struct {
	attrs map[string]string
	v     float64
	start int64 // seconds
	ts    int64 // seconds
}

func labels(kv ...string) map[string]string {
	m := map[string]string{}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return m
}

func sec(s int64) pcommon.Timestamp { return pcommon.Timestamp(s * int64(time.Second)) }

// newMetric appends a metric to a fresh batch with resource service.name=svc.
func newBatch() (pmetric.Metrics, pmetric.MetricSlice) {
	md := pmetric.NewMetrics()
	rm := md.ResourceMetrics().AppendEmpty()
	rm.Resource().Attributes().PutStr("service.name", "anvil")
	sm := rm.ScopeMetrics().AppendEmpty()
	sm.Scope().SetName("anvil")
	return md, sm.Metrics()
}

// appendMetric appends a metric named name to ms.
func appendMetric(ms pmetric.MetricSlice, name string) pmetric.Metric {
	m := ms.AppendEmpty()
	m.SetName(name)
	return m
}

// temporality is cumulative's, else delta.
func temporality(cumulative bool) pmetric.AggregationTemporality {
	if cumulative {
		return pmetric.AggregationTemporalityCumulative
	}
	return pmetric.AggregationTemporalityDelta
}

// stamp sets a point's attributes and its start and end (in seconds).
func stamp(dp interface {
	Attributes() pcommon.Map
	SetStartTimestamp(pcommon.Timestamp)
	SetTimestamp(pcommon.Timestamp)
}, attrs map[string]string, start, ts int64,
) {
	putAttrs(dp.Attributes(), attrs)
	dp.SetStartTimestamp(sec(start))
	dp.SetTimestamp(sec(ts))
}

func putAttrs(m pcommon.Map, attrs map[string]string) {
	for k, v := range attrs {
		m.PutStr(k, v)
	}
}

func addSum(ms pmetric.MetricSlice, name string, cumulative, monotonic, double bool, pts ...pt) {
	s := appendMetric(ms, name).SetEmptySum()
	s.SetIsMonotonic(monotonic)
	s.SetAggregationTemporality(temporality(cumulative))
	for _, p := range pts {
		dp := s.DataPoints().AppendEmpty()
		stamp(dp, p.attrs, p.start, p.ts)
		if double {
			dp.SetDoubleValue(p.v)
		} else {
			dp.SetIntValue(int64(p.v))
		}
	}
}

func sumBatch(name string, cumulative bool, pts ...pt) pmetric.Metrics {
	md, ms := newBatch()
	addSum(ms, name, cumulative, true, false, pts...)
	return md
}

// attrKey renders attributes sorted, e.g. "queue_id=q1,x=y".
func attrKey(m pcommon.Map) string {
	parts := make([]string, 0, m.Len())
	for k, v := range m.All() {
		parts = append(parts, k+"="+v.AsString())
	}
	sort.Strings(parts)
	return strings.Join(parts, ",")
}

// numbers returns metric name -> attributes -> value of every number point,
// failing on duplicate series.
func numbers(t testing.TB, md pmetric.Metrics) map[string]map[string]float64 {
	t.Helper()
	out := map[string]map[string]float64{}
	forEachMetric(md, func(res string, m pmetric.Metric) {
		var dps pmetric.NumberDataPointSlice
		switch m.Type() {
		case pmetric.MetricTypeSum:
			dps = m.Sum().DataPoints()
		case pmetric.MetricTypeGauge:
			dps = m.Gauge().DataPoints()
		default:
			return
		}
		if out[m.Name()] == nil {
			out[m.Name()] = map[string]float64{}
		}
		for i := 0; i < dps.Len(); i++ {
			dp := dps.At(i)
			k := res + attrKey(dp.Attributes())
			_, dup := out[m.Name()][k]
			require.False(t, dup, "duplicate series %s %s", m.Name(), k)
			out[m.Name()][k] = numValue(dp)
		}
	})
	return out
}

func forEachMetric(md pmetric.Metrics, f func(res string, m pmetric.Metric)) {
	for i := 0; i < md.ResourceMetrics().Len(); i++ {
		rm := md.ResourceMetrics().At(i)
		res := ""
		if v, ok := rm.Resource().Attributes().Get("service.instance.id"); ok {
			res = v.AsString() + "|"
		}
		for j := 0; j < rm.ScopeMetrics().Len(); j++ {
			ms := rm.ScopeMetrics().At(j).Metrics()
			for k := 0; k < ms.Len(); k++ {
				f(res, ms.At(k))
			}
		}
	}
}

func only(t testing.TB, md pmetric.Metrics) pmetric.Metric {
	t.Helper()
	require.Equal(t, 1, md.ResourceMetrics().Len())
	require.Equal(t, 1, md.ResourceMetrics().At(0).ScopeMetrics().Len())
	ms := md.ResourceMetrics().At(0).ScopeMetrics().At(0).Metrics()
	require.Equal(t, 1, ms.Len())
	return ms.At(0)
}

func fmtKV(kv map[string]float64) string { return fmt.Sprint(kv) }

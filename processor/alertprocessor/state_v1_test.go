package alertprocessor

import (
	"context"
	"flag"
	"math"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/otel/attribute"
)

// testdata/state_v1 holds the storage records (key -> file) that the engine
// of state format version 1 saved for stateV1Rules after feedStateV1. They
// were written by `go test -run TestWriteStateV1 -update-state-v1` and are
// never rewritten by later code: TestStateV1Loads checks that what an
// earlier release saved still resumes.
var updateStateV1 = flag.Bool("update-state-v1", false, "rewrite testdata/state_v1 from the current code")

const stateV1Dir = "testdata/state_v1"

// stateV1Rules covers every kind of window content: explicit histogram
// buckets in one layout and in two, an exponential histogram, counter
// increases, gauge samples (the sketch, negative values included), last
// values, summary quantiles, event fields, per-event violations, groups, and
// the states firing, pending and inactive with data. Changing them changes
// their fingerprints: the saved state would no longer resume.
func stateV1Rules() []RuleConfig {
	return []RuleConfig{
		{Name: "hist_p90", Metric: "h", Stat: StatP90, Window: time.Minute, Op: OpGT, Threshold: 1e9},
		{Name: "hist_max", Metric: "h", Stat: StatMax, Window: time.Minute, Op: OpGT, Threshold: 1e9},
		{Name: "layouts_p50", Metric: "hd", Stat: StatP50, Window: time.Minute, Op: OpGT, Threshold: 1e9},
		{Name: "exp_p99", Metric: "e", Stat: StatP99, Window: time.Minute, Op: OpGT, Threshold: 1e9},
		{Name: "counter_inc", Metric: "c", Stat: StatIncrease, Window: time.Minute, Op: OpGT, Threshold: 1e9},
		{Name: "counter_rate", Metric: "c", Stat: StatRate, Window: time.Minute, Op: OpGT, Threshold: 1e9},
		{Name: "gauge_p50", Metric: "g", Stat: StatP50, Window: time.Minute, Op: OpGT, Threshold: 1e9},
		{Name: "gauge_last", Metric: "g", Stat: StatLast, Window: time.Minute, Op: OpGT, Threshold: 1e9},
		{Name: "gauge_min", Metric: "g", Stat: StatMin, Window: time.Minute, Op: OpLT, Threshold: 0, Severity: SeverityCritical},
		{Name: "summary_p99", Metric: "s", Stat: StatP99, Window: time.Minute, Op: OpGT, Threshold: 1e9},
		{Name: "event_avg", Event: "ev", Field: "v", Stat: StatAvg, Window: time.Minute, Op: OpGT, Threshold: 1e9},
		{Name: "event_each", Event: "ev", Field: "v", Window: time.Minute, Op: OpGT, Threshold: 5},
		{Name: "low_agreement", Event: "anvil.agreement.low_score", Field: "value", Op: OpLT, Threshold: 0.4,
			GroupBy: []string{"dimension"}, Severity: SeverityCritical, Summary: "agreement {{ .Value }} on {{ .Labels.dimension }}"},
		{Name: "export_failures", Event: "anvil.export.generate.exception", Stat: StatCount, Window: time.Hour,
			Op: OpGE, Threshold: 3, For: 30 * time.Minute, Severity: SeverityError},
	}
}

// feedStateV1 gives p's engine the data of the snapshot over two evaluations.
func feedStateV1(p *replica) {
	e := p.e
	cum, delta := pmetric.AggregationTemporalityCumulative, pmetric.AggregationTemporalityDelta
	start := pcommon.NewTimestampFromTime(p.clk.Now().Add(-time.Hour))
	bounds := []float64{100, 250, 500, 1000}
	e.consumeMetrics(histogramMetrics("h", cum, start, bounds, []uint64{10, 0, 0, 0, 0}, 500))
	e.consumeMetrics(histogramMetrics("h", cum, start, bounds, []uint64{10, 50, 30, 9, 1}, 30500))
	e.consumeMetrics(histogramMetrics("hd", delta, 0, bounds, []uint64{1, 2, 3, 4, 0}, 5000))
	e.consumeMetrics(histogramMetrics("hd", delta, 0, []float64{10, 300}, []uint64{5, 5, 1}, 2000))
	e.consumeMetrics(expHistMetrics("e", delta, 0, false, 3, []uint64{4, 0, 6, 2}))
	e.consumeMetrics(sumMetrics("c", cum, start, 10))
	e.consumeMetrics(sumMetrics("c", cum, start, 17))
	e.consumeMetrics(gaugeMetrics("g", nil, -3, 1, 8, 2.5))
	md := pmetric.NewMetrics()
	m := md.ResourceMetrics().AppendEmpty().ScopeMetrics().AppendEmpty().Metrics().AppendEmpty()
	m.SetName("s")
	dp := m.SetEmptySummary().DataPoints().AppendEmpty()
	dp.SetStartTimestamp(start)
	dp.SetCount(5)
	dp.SetSum(60)
	for _, q := range [][2]float64{{0, 1}, {0.5, 10}, {0.99, 42}, {1, 50}} {
		qv := dp.QuantileValues().AppendEmpty()
		qv.SetQuantile(q[0])
		qv.SetValue(q[1])
	}
	e.consumeMetrics(md)
	e.consumeLogs(eventLogs("ev", "v", nil, 1, 2, 9, math.Inf(1)))
	e.consumeLogs(eventLogs("anvil.agreement.low_score", "value", map[string]string{"dimension": "bbox"}, 0.2))
	e.consumeLogs(eventLogs("anvil.export.generate.exception", "", nil, 0, 0, 0))
	p.tick()
	e.consumeMetrics(sumMetrics("c", cum, start, 20))
	e.consumeMetrics(gaugeMetrics("g", nil, 4))
	e.consumeLogs(eventLogs("ev", "v", nil, 3))
	e.consumeLogs(eventLogs("anvil.agreement.low_score", "value", map[string]string{"dimension": "bbox"}, 0.3))
	e.consumeLogs(eventLogs("anvil.agreement.low_score", "value", map[string]string{"dimension": "label"}, 0.9))
	e.consumeLogs(eventLogs("anvil.export.generate.exception", "", nil, 0))
	p.tick()
}

func TestWriteStateV1(t *testing.T) {
	if !*updateStateV1 {
		t.Skip("writes testdata/state_v1 only with -update-state-v1")
	}
	p := newReplica(t, testConfig(stateV1Rules()...))
	p.start()
	feedStateV1(p)
	p.stop() // saves every record
	p.start()
	keys := []string{stateIndexKey}
	for _, r := range stateV1Rules() {
		keys = append(keys, stateRulePrefix+r.Name)
	}
	require.NoError(t, os.RemoveAll(stateV1Dir))
	for _, k := range keys {
		b, err := p.e.store.client.Get(context.Background(), k)
		require.NoError(t, err)
		require.NotNil(t, b, k)
		path := filepath.Join(stateV1Dir, k+".json")
		require.NoError(t, os.MkdirAll(filepath.Dir(path), 0o755))
		require.NoError(t, os.WriteFile(path, append(b, '\n'), 0o644))
	}
}

// loadStateV1 starts a replica of stateV1Rules on the records of
// testdata/state_v1, at the time they were saved.
func loadStateV1(t *testing.T) *replica {
	t.Helper()
	p := newReplica(t, testConfig(stateV1Rules()...))
	p.clk.Advance(2 * p.cfg.EvaluationInterval) // feedStateV1's two evaluations
	p.start()
	err := filepath.WalkDir(stateV1Dir, func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(path)
		require.NoError(t, err)
		rel, _ := filepath.Rel(stateV1Dir, path)
		key := filepath.ToSlash(rel[:len(rel)-len(".json")])
		return p.e.store.client.Set(context.Background(), key, b[:len(b)-1])
	})
	require.NoError(t, err)
	p.kill()
	p.start()
	return p
}

// TestStateV1Loads: state saved by the format-1 engine resumes: alert
// states, their times and values, and every window's contents.
func TestStateV1Loads(t *testing.T) {
	p := loadStateV1(t)
	assert.Empty(t, p.resolved, "no rule changed: nothing resolved at load")

	active := func(rule, state string) int64 {
		return counterValue(t, p.tt, "otelcol_alert_active", attribute.String("rule", rule), attribute.String("state", state))
	}
	assert.Equal(t, int64(1), active("event_each", "firing"))
	assert.Equal(t, int64(1), active("event_avg", "firing"), "an infinite field value")
	assert.Equal(t, int64(1), active("gauge_min", "firing"))
	assert.Equal(t, int64(1), active("low_agreement", "firing"), "bbox fires, label has data but is inactive")
	assert.Equal(t, int64(1), active("export_failures", "pending"))
	assert.Equal(t, int64(0), active("export_failures", "firing"))
	assert.Equal(t, int64(0), active("hist_p90", "firing"))

	want := map[string]float64{
		"hist_p90":     555.5555555555555,
		"hist_max":     1000,
		"layouts_p50":  275,
		"exp_p99":      124.15999999999997,
		"counter_inc":  10,
		"counter_rate": 10.0 / 60,
		"gauge_p50":    2.5112312031638813,
		"gauge_last":   4,
		"gauge_min":    -3,
		"summary_p99":  42,
		"event_avg":    math.Inf(1),
		"event_each":   math.Inf(1),
	}
	for name, w := range want {
		v, ok := valueOf(t, p.e, name, "")
		require.True(t, ok, name)
		if math.IsInf(w, 0) {
			assert.Equal(t, w, v, name)
		} else {
			assert.InDelta(t, w, v, 1e-9, name)
		}
	}
	v, ok := valueOf(t, p.e, "low_agreement", "bbox")
	require.True(t, ok)
	assert.Equal(t, 0.3, v)
	_, ok = valueOf(t, p.e, "low_agreement", "label")
	assert.False(t, ok, "label's 0.9 met no condition")
	b, err := os.ReadFile(filepath.Join(stateV1Dir, "rule/low_agreement.json"))
	require.NoError(t, err)
	assert.Contains(t, string(b), `"labels":{"dimension":"label"},"state":"inactive"`, "an inactive group with data is saved")
	v, _ = valueOf(t, p.e, "export_failures", "")
	assert.Equal(t, 4.0, v)

	// The saved times go on: export_failures fires `for` after it became
	// pending (the first evaluation), naming that start; the firing alerts
	// resolve once their data leaves the window, with their saved start.
	firstEval := newFakeClock().Now().Add(p.cfg.EvaluationInterval)
	pendingSince, firedAt := firstEval, firstEval
	var fired, resolved []Notification
	for p.clk.Now().Before(pendingSince.Add(30 * time.Minute)) {
		for _, n := range p.tick() {
			if n.Status == StatusFiring {
				fired = append(fired, n)
			} else {
				resolved = append(resolved, n)
			}
		}
	}
	require.Len(t, fired, 1)
	assert.Equal(t, "export_failures", fired[0].Rule)
	assert.Equal(t, pendingSince, fired[0].StartsAt)
	assert.Equal(t, pendingSince.Add(30*time.Minute), fired[0].At)
	got := map[string]time.Time{}
	for _, n := range resolved {
		got[n.Rule] = n.StartsAt
	}
	assert.Equal(t, map[string]time.Time{"event_avg": firedAt, "event_each": firedAt, "gauge_min": firedAt, "low_agreement": firedAt}, got)
}

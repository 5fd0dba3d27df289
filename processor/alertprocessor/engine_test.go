package alertprocessor

import (
	"context"
	"math"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/anvil/anvilcol/processor/alertprocessor/internal/notify"
)

// valueOf computes a rule's current value for the group with key (one
// group_by value, or "" for a rule without group_by) as evaluate would.
func valueOf(t *testing.T, e *engine, name, key string) (float64, bool) {
	t.Helper()
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, ar := range e.rules {
		r := ar.alerts()
		if r.name != name {
			continue
		}
		if key != "" {
			key += "\xff"
		}
		g, ok := r.groups[key]
		if !ok {
			return 0, false
		}
		return r.value(g, e.now())
	}
	t.Fatalf("no rule %q", name)
	return 0, false
}

func TestEventStatsOverField(t *testing.T) {
	values := make([]float64, 100)
	for i := range values {
		values[i] = float64(i + 1) // 1..100
	}
	tests := []struct {
		stat Stat
		want float64
		tol  float64 // relative; percentiles come from a 1%-accurate sketch
	}{
		{StatP50, 50, 0.03}, {StatP90, 90, 0.03}, {StatP95, 95, 0.03}, {StatP99, 99, 0.03}, {StatP999, 99.9, 0.03},
		{StatAvg, 50.5, 0}, {StatMin, 1, 0}, {StatMax, 100, 0}, {StatSum, 5050, 0}, {StatCount, 100, 0},
		{StatIncrease, 5050, 0}, {StatRate, 5050.0 / 60, 0}, {StatLast, 100, 0},
	}
	for _, tc := range tests {
		t.Run(tc.stat.String(), func(t *testing.T) {
			e, clk, _ := newTestEngine(t, testConfig(RuleConfig{
				Name: "r", Event: "anvil.agreement.low_score", Field: "value", Stat: tc.stat,
				Window: time.Minute, Op: OpGT, Threshold: 0,
			}))
			e.consumeLogs(eventLogs("anvil.agreement.low_score", "value", nil, values...))
			clk.Advance(10 * time.Second)
			got, ok := valueOf(t, e, "r", "")
			require.True(t, ok)
			if tc.tol == 0 {
				assert.InDelta(t, tc.want, got, 1e-9)
			} else {
				assert.InEpsilon(t, tc.want, got, tc.tol)
			}
		})
	}
}

func TestEventCountWithoutField(t *testing.T) {
	e, clk, _ := newTestEngine(t, testConfig(RuleConfig{
		Name: "export_failures", Event: "anvil.export.generate.exception", Stat: StatCount, Window: time.Hour,
		Op: OpGE, Threshold: 3, Severity: SeverityError, Summary: "{{ .Value }} export failures in the last hour",
	}))
	e.consumeLogs(eventLogs("anvil.export.generate.exception", "", nil, 0, 0))
	e.consumeLogs(eventLogs("anvil.export.generate.stop", "", nil, 0, 0, 0)) // other events do not count
	require.Empty(t, tick(e, clk))
	// Spans named like the event count as well.
	td := ptrace.NewTraces()
	td.ResourceSpans().AppendEmpty().ScopeSpans().AppendEmpty().Spans().AppendEmpty().SetName("anvil.export.generate.exception")
	e.consumeTraces(td)
	ns := tick(e, clk)
	require.Len(t, ns, 1)
	assert.Equal(t, StatusFiring, ns[0].Status)
	assert.Equal(t, "3 export failures in the last hour", ns[0].Summary)
	assert.Equal(t, "error", ns[0].Severity.String())
}

func TestEventGlobMatchesLogAttributeAndSpanName(t *testing.T) {
	e, clk, _ := newTestEngine(t, testConfig(RuleConfig{
		Name: "exceptions", Event: "anvil.*.exception", Stat: StatCount, Window: time.Minute, Op: OpGE, Threshold: 3,
	}))
	ld := eventLogs("", "", nil, 0)
	ld.ResourceLogs().At(0).ScopeLogs().At(0).LogRecords().At(0).Attributes().PutStr("event.name", "anvil.label.submit.exception")
	e.consumeLogs(ld)
	e.consumeLogs(eventLogs("anvil.assignment.dispatch.exception", "", nil, 0))
	td := ptrace.NewTraces()
	td.ResourceSpans().AppendEmpty().ScopeSpans().AppendEmpty().Spans().AppendEmpty().SetName("anvil.export.generate.exception")
	e.consumeTraces(td)
	e.consumeLogs(eventLogs("anvil.export.generate.stop", "", nil, 0))
	clk.Advance(time.Second)
	v, ok := valueOf(t, e, "exceptions", "")
	require.True(t, ok)
	assert.Equal(t, 3.0, v)
}

func TestSpanDurationField(t *testing.T) {
	e, clk, _ := newTestEngine(t, testConfig(RuleConfig{
		Name: "slow", Event: "anvil.label.submit", Field: "duration", Stat: StatMax, Window: time.Minute, Op: OpGT, Threshold: 1,
	}))
	td := ptrace.NewTraces()
	s := td.ResourceSpans().AppendEmpty().ScopeSpans().AppendEmpty().Spans().AppendEmpty()
	s.SetName("anvil.label.submit")
	s.SetStartTimestamp(pcommon.Timestamp(1_000))
	s.SetEndTimestamp(pcommon.Timestamp(2_501_000))
	e.consumeTraces(td)
	clk.Advance(time.Second)
	v, ok := valueOf(t, e, "slow", "")
	require.True(t, ok)
	assert.Equal(t, 2_500_000.0, v)
}

func TestPerEventCheckFiresOnOneBadEventAndResolves(t *testing.T) {
	cfg := testConfig(RuleConfig{
		Name: "low_agreement", Event: "anvil.agreement.low_score", Field: "value", Op: OpLT, Threshold: 0.4,
		GroupBy: []string{"dimension"}, Severity: SeverityCritical,
		Summary: "Inter-rater agreement {{ .Value }} below 0.4 on {{ .Labels.dimension }}",
	})
	e, clk, _ := newTestEngine(t, cfg)
	e.consumeLogs(eventLogs("anvil.agreement.low_score", "value", map[string]string{"dimension": "label"}, 0.8, 0.31, 0.9))
	e.consumeLogs(eventLogs("anvil.agreement.low_score", "value", map[string]string{"dimension": "bbox"}, 0.7))
	ns := tick(e, clk)
	require.Len(t, ns, 1)
	assert.Equal(t, "Inter-rater agreement 0.31 below 0.4 on label", ns[0].Summary)
	assert.Equal(t, map[string]string{"dimension": "label"}, ns[0].Labels)
	assert.Equal(t, 0.31, ns[0].Value)
	// No bad event in the next window: resolved.
	ns = tick(e, clk)
	require.Len(t, ns, 1)
	assert.Equal(t, StatusResolved, ns[0].Status)
	assert.Equal(t, map[string]string{"dimension": "label"}, ns[0].Labels)
}

func TestOps(t *testing.T) {
	tests := []struct {
		op   Op
		v    float64
		want bool
	}{
		{OpGT, 5, true}, {OpGT, 4, false}, {OpGE, 4, true}, {OpGE, 3.9, false},
		{OpLT, 3, true}, {OpLT, 4, false}, {OpLE, 4, true}, {OpLE, 4.1, false},
		{OpEQ, 4, true}, {OpEQ, 4.5, false}, {OpNE, 4.5, true}, {OpNE, 4, false},
	}
	for _, tc := range tests {
		o := tc.op
		assert.Equal(t, tc.want, o.eval(tc.v, 4), "%v %s 4", tc.v, tc.op)
		assert.False(t, o.eval(math.NaN(), 4), "NaN never meets a condition")
	}
	// Through the engine: each op decides whether the rule fires.
	for _, tc := range tests {
		e, clk, _ := newTestEngine(t, testConfig(RuleConfig{Name: "g", Metric: "m", Stat: StatLast, Window: 10 * time.Second, Op: tc.op, Threshold: 4}))
		e.consumeMetrics(gaugeMetrics("m", nil, tc.v))
		ns := tick(e, clk)
		assert.Equal(t, tc.want, len(ns) == 1, "%v %s 4", tc.v, tc.op)
	}
}

func TestWindowSlides(t *testing.T) {
	e, clk, _ := newTestEngine(t, testConfig(RuleConfig{
		Name: "c", Event: "anvil.export.failed", Stat: StatCount, Window: 30 * time.Second, Op: OpGE, Threshold: 4,
	}))
	send := func(n int) { e.consumeLogs(eventLogs("anvil.export.failed", "", nil, make([]float64, n)...)) }
	send(3) // slot 12:00:00
	assert.Empty(t, tick(e, clk))
	clk.Advance(10 * time.Second)
	send(2) // slot 12:00:20
	assert.Equal(t, []string{"firing"}, statuses(tick(e, clk)), "3+2 in the window at 12:00:30")
	v, _ := valueOf(t, e, "c", "")
	assert.Equal(t, 5.0, v)
	assert.Equal(t, []string{"resolved"}, statuses(tick(e, clk)), "the first 3 left the window at 12:00:40")
	v, _ = valueOf(t, e, "c", "")
	assert.Equal(t, 2.0, v)
	tick(e, clk)
	v, _ = valueOf(t, e, "c", "")
	assert.Equal(t, 2.0, v, "still there at 12:00:50")
	tick(e, clk)
	v, _ = valueOf(t, e, "c", "")
	assert.Equal(t, 0.0, v, "all left the window at 12:01:00")
}

func TestForAndKeepFiringFor(t *testing.T) {
	e, clk, tt := newTestEngine(t, testConfig(RuleConfig{
		Name: "depth", Metric: "anvil.queue.depth", Stat: StatLast, Window: 10 * time.Second, Op: OpGT, Threshold: 5,
		For: 30 * time.Second, KeepFiringFor: 20 * time.Second,
	}))
	feed := func(v float64) []Notification {
		e.consumeMetrics(gaugeMetrics("anvil.queue.depth", nil, v))
		return tick(e, clk)
	}
	// Pending that does not last 30s never fires.
	assert.Empty(t, feed(10))
	assert.Equal(t, statePending, e.rules[0].alerts().groups[""].state)
	assert.Empty(t, feed(1))
	assert.Equal(t, stateInactive, e.rules[0].alerts().groups[""].state)

	assert.Empty(t, feed(10)) // pending since t1
	assert.Empty(t, feed(10)) // t1+10s
	assert.Empty(t, feed(10)) // t1+20s
	ns := feed(10)            // t1+30s: fires
	require.Equal(t, []string{"firing"}, statuses(ns))
	assert.Equal(t, 10.0, ns[0].Value)
	firedStart := ns[0].StartsAt
	assert.Equal(t, 30*time.Second, clk.Now().Sub(firedStart), "startsAt is when the condition began to hold")

	assert.Empty(t, feed(1), "keep_firing_for: 10s after the condition stopped")
	assert.Equal(t, stateFiring, e.rules[0].alerts().groups[""].state)
	assert.Empty(t, feed(10), "holds again: the keep_firing_for clock restarts")
	assert.Empty(t, feed(1))
	ns = feed(1) // 20s without the condition
	require.Equal(t, []string{"resolved"}, statuses(ns))
	assert.Equal(t, 1.0, ns[0].Value)
	assert.Equal(t, clk.Now(), ns[0].EndsAt)
	assert.Equal(t, firedStart, ns[0].StartsAt)

	tr := func(from, to string) int64 {
		return counterValue(t, tt, "otelcol_alert_transitions", attribute.String("rule", "depth"),
			attribute.String("from", from), attribute.String("to", to))
	}
	assert.Equal(t, int64(2), tr("inactive", "pending"))
	assert.Equal(t, int64(1), tr("pending", "inactive"))
	assert.Equal(t, int64(1), tr("pending", "firing"))
	assert.Equal(t, int64(1), tr("firing", "resolved"))
}

func TestFiringGaugeBySeverity(t *testing.T) {
	e, clk, tt := newTestEngine(t, testConfig(RuleConfig{
		Name: "q", Metric: "anvil.queue.depth", Window: 10 * time.Second, Op: OpGT, Threshold: 5, GroupBy: []string{"queue_id"}, Severity: SeverityCritical,
	}))
	e.consumeMetrics(gaugeMetrics("anvil.queue.depth", map[string]string{"queue_id": "a"}, 9))
	e.consumeMetrics(gaugeMetrics("anvil.queue.depth", map[string]string{"queue_id": "b"}, 9))
	e.consumeMetrics(gaugeMetrics("anvil.queue.depth", map[string]string{"queue_id": "c"}, 1))
	require.Len(t, tick(e, clk), 2)
	assert.Equal(t, int64(2), counterValue(t, tt, "otelcol_alert_firing", attribute.String("rule", "q"), attribute.String("severity", "critical")))
}

func TestGroupByMakesOneAlertPerValueSet(t *testing.T) {
	e, clk, _ := newTestEngine(t, testConfig(RuleConfig{
		Name: "timeouts", Event: "anvil.assignment.timed_out", Stat: StatCount, Window: 20 * time.Second, Op: OpGE, Threshold: 2,
		GroupBy: []string{"queue_id", "region"},
	}))
	ld := eventLogs("anvil.assignment.timed_out", "", map[string]string{"queue_id": "q1"}, 0, 0, 0)
	ld.ResourceLogs().At(0).Resource().Attributes().PutStr("region", "eu") // group_by falls back to resource attributes
	e.consumeLogs(ld)
	e.consumeLogs(eventLogs("anvil.assignment.timed_out", "", map[string]string{"queue_id": "q2"}, 0))
	ns := tick(e, clk)
	require.Len(t, ns, 1)
	assert.Equal(t, map[string]string{"queue_id": "q1", "region": "eu"}, ns[0].Labels)
	e.consumeLogs(eventLogs("anvil.assignment.timed_out", "", map[string]string{"queue_id": "q2"}, 0))
	ns = tick(e, clk)
	require.Len(t, ns, 1, "q2 reaches 2 within its window; q1 still firing")
	assert.Equal(t, map[string]string{"queue_id": "q2", "region": ""}, ns[0].Labels)
	assert.NotEqual(t, dedupKey("timeouts", map[string]string{"queue_id": "q1", "region": "eu"}), ns[0].DedupKey)
	ns = tick(e, clk)
	require.Equal(t, []string{"resolved", "resolved"}, statuses(ns), "both fell below 2 in their windows")
	assert.ElementsMatch(t, []string{"q1", "q2"}, []string{ns[0].Labels["queue_id"], ns[1].Labels["queue_id"]})
}

func TestMaxGroupsDropsAndCounts(t *testing.T) {
	cfg := testConfig(RuleConfig{Name: "g", Event: "e", Stat: StatCount, Op: OpGT, Threshold: 0, GroupBy: []string{"k"}})
	cfg.MaxGroups = 2
	e, _, tt := newTestEngine(t, cfg)
	for _, k := range []string{"a", "b", "c", "d"} {
		e.consumeLogs(eventLogs("e", "", map[string]string{"k": k}, 0))
	}
	assert.Len(t, e.rules[0].alerts().groups, 2)
	assert.Equal(t, int64(2), counterValue(t, tt, "otelcol_alert_observations_dropped", attribute.String("reason", "max_groups")))
}

func TestMissingFieldIsCounted(t *testing.T) {
	e, _, tt := newTestEngine(t, testConfig(RuleConfig{Name: "f", Event: "e", Field: "value", Op: OpLT, Threshold: 1}))
	e.consumeLogs(eventLogs("e", "", nil, 0))
	ld := eventLogs("e", "", map[string]string{"value": "abc"}, 0)
	e.consumeLogs(ld)
	assert.Equal(t, int64(1), counterValue(t, tt, "otelcol_alert_observations_dropped", attribute.String("reason", "field_missing")))
	assert.Equal(t, int64(1), counterValue(t, tt, "otelcol_alert_observations_dropped", attribute.String("reason", "not_a_number")))
}

func TestFieldFromAttributeWhenBodyLacksIt(t *testing.T) {
	e, clk, _ := newTestEngine(t, testConfig(RuleConfig{Name: "f", Event: "e", Field: "threshold", Stat: StatMax, Op: OpGT, Threshold: 1}))
	e.consumeLogs(eventLogs("e", "", map[string]string{"threshold": "0.75"}, 0))
	clk.Advance(time.Second)
	v, ok := valueOf(t, e, "f", "")
	require.True(t, ok)
	assert.Equal(t, 0.75, v)
}

func TestRepeatInterval(t *testing.T) {
	cfg := testConfig(RuleConfig{Name: "r", Metric: "m", Window: 10 * time.Second, Op: OpGT, Threshold: 0})
	cfg.RepeatInterval = 30 * time.Second
	e, clk, _ := newTestEngine(t, cfg)
	var got []string
	for range 7 {
		e.consumeMetrics(gaugeMetrics("m", nil, 1))
		got = append(got, statuses(tick(e, clk))...)
	}
	assert.Equal(t, []string{"firing", "firing(repeat)", "firing(repeat)"}, got)
}

func TestSendResolvedFalseStillResolvesState(t *testing.T) {
	cfg := testConfig(RuleConfig{Name: "r", Metric: "m", Window: 10 * time.Second, Op: OpGT, Threshold: 0})
	cfg.SendResolved = false
	e, clk, _ := newTestEngine(t, cfg)
	in := newIntake(t)
	nc := NewNotifierConfig(notify.TypeWebhook)
	nc.Endpoint = in.URL
	cfg.Notifiers = []NotifierConfig{nc}
	ns, err := e.newNotifiers(t.Context(), componenttest.NewNopHost())
	require.NoError(t, err)
	sink := notifiersSink{ns}
	ns.Start()
	e.start(sink)
	t.Cleanup(func() { _ = e.shutdown(t.Context()) })
	e.consumeMetrics(gaugeMetrics("m", nil, 1))
	for _, n := range tick(e, clk) {
		sink.notify(n)
	}
	for _, n := range tick(e, clk) {
		sink.notify(n)
	}
	assert.Equal(t, stateInactive, e.rules[0].alerts().groups[""].state)
	ns.Shutdown(t.Context()) // delivers everything dispatched, then stops: nothing else can arrive
	require.Len(t, in.Requests(), 1)
	assert.Equal(t, "firing", decode(t, in.Requests()[0].Body)["status"])
}

func TestAbsenceRuleWithoutGroupByFires(t *testing.T) {
	e, clk, _ := newTestEngine(t, testConfig(RuleConfig{Name: "quiet", Event: "anvil.label.submit.stop", Stat: StatCount, Window: time.Minute, Op: OpLT, Threshold: 1}))
	assert.Equal(t, []string{"firing"}, statuses(tick(e, clk)))
}

func TestDedupKeyStableAcrossRestarts(t *testing.T) {
	a := dedupKey("low_agreement", map[string]string{"dimension": "label", "queue_id": "q"})
	b := dedupKey("low_agreement", map[string]string{"queue_id": "q", "dimension": "label"})
	assert.Equal(t, a, b)
	assert.Equal(t, "anvilcol-low_agreement-", a[:len("anvilcol-low_agreement-")])
	assert.NotEqual(t, a, dedupKey("low_agreement", map[string]string{"dimension": "bbox", "queue_id": "q"}))
	assert.NotEqual(t, a, dedupKey("other", map[string]string{"dimension": "label", "queue_id": "q"}))
	// Two engines (two runs of the collector) name the same alert the same.
	mk := func() string {
		e, clk, _ := newTestEngine(t, testConfig(RuleConfig{Name: "r", Metric: "m", Window: 10 * time.Second, Op: OpGT, Threshold: 0, GroupBy: []string{"k"}}))
		e.consumeMetrics(gaugeMetrics("m", map[string]string{"k": "v"}, 1))
		return tick(e, clk)[0].DedupKey
	}
	assert.Equal(t, mk(), mk())
}

func TestMetricNameGlob(t *testing.T) {
	e, clk, _ := newTestEngine(t, testConfig(RuleConfig{Name: "any", Metric: "anvil.*.depth", Stat: StatMax, Window: 10 * time.Second, Op: OpGT, Threshold: 0}))
	e.consumeMetrics(gaugeMetrics("anvil.queue.depth", nil, 3))
	e.consumeMetrics(gaugeMetrics("anvil.export.depth", nil, 7))
	e.consumeMetrics(gaugeMetrics("other.depth", nil, 100))
	clk.Advance(time.Second)
	v, _ := valueOf(t, e, "any", "")
	assert.Equal(t, 7.0, v)
}

func TestGaugeStats(t *testing.T) {
	for _, tc := range []struct {
		stat Stat
		want float64
	}{{StatLast, 4}, {StatMax, 9}, {StatMin, 1}, {StatAvg, 4.5}, {StatSum, 18}, {StatCount, 4}, {StatIncrease, 3}} {
		e, clk, _ := newTestEngine(t, testConfig(RuleConfig{Name: "g", Metric: "m", Stat: tc.stat, Window: time.Minute, Op: OpGT, Threshold: 0}))
		e.consumeMetrics(gaugeMetrics("m", nil, 1))
		e.consumeMetrics(gaugeMetrics("m", nil, 9))
		e.consumeMetrics(gaugeMetrics("m", nil, 4, 4)) // same series twice: change 0
		clk.Advance(time.Second)
		v, ok := valueOf(t, e, "g", "")
		require.True(t, ok)
		assert.Equal(t, tc.want, v, tc.stat)
	}
}

func TestCumulativeCounterIsDifferencedWithResets(t *testing.T) {
	cum := pmetric.AggregationTemporalityCumulative
	for _, tc := range []struct {
		stat Stat
		want float64
	}{{StatIncrease, 12}, {StatRate, 12.0 / 60}, {StatLast, 2}, {StatSum, 12}, {StatCount, 3}, {StatMax, 5}} {
		e, clk, _ := newTestEngine(t, testConfig(RuleConfig{Name: "c", Metric: "anvil.assignment.timed_out.count", Stat: tc.stat, Window: time.Minute, Op: OpGT, Threshold: 0}))
		before := pcommon.NewTimestampFromTime(clk.Now().Add(-time.Hour)) // started before the collector: first point is a baseline
		e.consumeMetrics(sumMetrics("anvil.assignment.timed_out.count", cum, before, 100))
		e.consumeMetrics(sumMetrics("anvil.assignment.timed_out.count", cum, before, 105)) // +5
		e.consumeMetrics(sumMetrics("anvil.assignment.timed_out.count", cum, before, 110)) // +5
		restart := pcommon.NewTimestampFromTime(clk.Now())                                 // the producer restarted
		e.consumeMetrics(sumMetrics("anvil.assignment.timed_out.count", cum, restart, 2))  // reset: +2
		clk.Advance(time.Second)
		v, ok := valueOf(t, e, "c", "")
		require.True(t, ok)
		assert.InDelta(t, tc.want, v, 1e-9, tc.stat)
	}
}

func TestCounterResetWithoutStartTime(t *testing.T) {
	cum := pmetric.AggregationTemporalityCumulative
	e, clk, _ := newTestEngine(t, testConfig(RuleConfig{Name: "c", Metric: "c", Stat: StatIncrease, Window: time.Minute, Op: OpGT, Threshold: 0}))
	for _, v := range []int64{10, 14, 3, 8} { // 10 baseline, +4, reset to 3 (+3), +5
		e.consumeMetrics(sumMetrics("c", cum, 0, v))
	}
	clk.Advance(time.Second)
	v, _ := valueOf(t, e, "c", "")
	assert.Equal(t, 12.0, v)
}

func TestNewCumulativeSeriesCountsFromStart(t *testing.T) {
	e, clk, _ := newTestEngine(t, testConfig(RuleConfig{Name: "c", Metric: "c", Stat: StatIncrease, Window: time.Minute, Op: OpGT, Threshold: 0}))
	clk.Advance(time.Second)
	e.consumeMetrics(sumMetrics("c", pmetric.AggregationTemporalityCumulative, pcommon.NewTimestampFromTime(clk.Now()), 7))
	v, _ := valueOf(t, e, "c", "")
	assert.Equal(t, 7.0, v, "a series that began after the collector started counts its first point")
}

// A series that began after the processor started but had been counting for
// long when its first point arrives (a writer that moved here from another
// gateway replica) is a baseline: its value is history, not this window's.
func TestSeriesFirstSeenLongAfterItBeganIsABaseline(t *testing.T) {
	cum := pmetric.AggregationTemporalityCumulative
	at := func(md pmetric.Metrics, ts time.Time) pmetric.Metrics {
		md.ResourceMetrics().At(0).ScopeMetrics().At(0).Metrics().At(0).Sum().DataPoints().At(0).SetTimestamp(pcommon.NewTimestampFromTime(ts))
		return md
	}
	for _, tc := range []struct {
		name string
		age  time.Duration // of the series at its first point here
		want float64
	}{
		{"moved after 10m", 10 * time.Minute, 5},
		{"new, first export after 30s", 30 * time.Second, 45},
	} {
		e, clk, _ := newTestEngine(t, testConfig(RuleConfig{Name: "c", Metric: "c", Stat: StatIncrease, Window: time.Hour, Op: OpGT, Threshold: 0}))
		began := clk.Now().Add(time.Second)
		clk.Advance(tc.age)
		e.consumeMetrics(at(sumMetrics("c", cum, pcommon.NewTimestampFromTime(began), 40), clk.Now()))
		clk.Advance(10 * time.Second)
		e.consumeMetrics(at(sumMetrics("c", cum, pcommon.NewTimestampFromTime(began), 45), clk.Now()))
		v, _ := valueOf(t, e, "c", "")
		assert.Equal(t, tc.want, v, tc.name)
	}
}

func TestDeltaCounter(t *testing.T) {
	e, clk, _ := newTestEngine(t, testConfig(RuleConfig{Name: "c", Metric: "c", Stat: StatIncrease, Window: time.Minute, Op: OpGE, Threshold: 50, Severity: SeverityWarning}))
	for range 5 {
		e.consumeMetrics(sumMetrics("c", pmetric.AggregationTemporalityDelta, 0, 10))
	}
	ns := tick(e, clk)
	require.Len(t, ns, 1)
	assert.Equal(t, 50.0, ns[0].Value)
}

func TestHistogramPercentilesFromBucketDeltas(t *testing.T) {
	cum := pmetric.AggregationTemporalityCumulative
	bounds := []float64{100, 250, 500, 1000}
	tests := []struct {
		stat Stat
		want float64
	}{
		// Delta buckets [0 50 30 9 1], 90 observations, Prometheus histogram_quantile:
		{StatP50, 100 + 150*(45.0/50)}, // rank 45 in (100,250]
		{StatP90, 500 + 500*(1.0/9)},   // rank 81 in (500,1000]
		{StatP99, 1000},                // rank 89.1 in +Inf: highest finite bound
		{StatCount, 90}, {StatIncrease, 90}, {StatSum, 30000}, {StatAvg, 30000.0 / 90},
	}
	for _, tc := range tests {
		e, clk, _ := newTestEngine(t, testConfig(RuleConfig{Name: "h", Metric: "anvil.assignment.dispatch.duration", Stat: tc.stat, Window: time.Minute, Op: OpGT, Threshold: 500}))
		start := pcommon.NewTimestampFromTime(clk.Now().Add(-time.Hour))
		e.consumeMetrics(histogramMetrics("anvil.assignment.dispatch.duration", cum, start, bounds, []uint64{10, 0, 0, 0, 0}, 500))
		e.consumeMetrics(histogramMetrics("anvil.assignment.dispatch.duration", cum, start, bounds, []uint64{10, 50, 30, 9, 1}, 30500))
		clk.Advance(time.Second)
		v, ok := valueOf(t, e, "h", "")
		require.True(t, ok, tc.stat)
		assert.InDelta(t, tc.want, v, 1e-9, tc.stat)
	}
}

// avg of a histogram is the window's pooled mean: the sum of the deltas'
// sums over the sum of their counts (not the mean of each point's mean, nor
// the cumulative point's lifetime mean).
func TestHistogramAvgIsSumOverCountOfTheDeltas(t *testing.T) {
	cum := pmetric.AggregationTemporalityCumulative
	e, clk, _ := newTestEngine(t, testConfig(RuleConfig{Name: "h", Metric: "anvil.agreement.score", Stat: StatAvg, Window: time.Minute, Op: OpLT, Threshold: 0}))
	start := pcommon.NewTimestampFromTime(clk.Now().Add(-time.Hour))
	bounds := []float64{0.5, 1}
	point := func(counts []uint64, sum float64) {
		e.consumeMetrics(histogramMetrics("anvil.agreement.score", cum, start, bounds, counts, sum))
	}
	point([]uint64{50, 50, 0}, 50)   // baseline: 100 observations of history
	point([]uint64{50, 52, 0}, 51.8) // +2 observations summing 1.8 (mean 0.9), slot 12:00:00
	clk.Advance(10 * time.Second)
	point([]uint64{58, 52, 0}, 53.4) // +8 observations summing 1.6 (mean 0.2), slot 12:00:10
	clk.Advance(time.Second)
	v, ok := valueOf(t, e, "h", "")
	require.True(t, ok)
	assert.InDelta(t, (1.8+1.6)/10, v, 1e-9, "pooled: 3.4 / 10 (the mean of the means would be 0.55, the lifetime mean 0.485)")
	clk.Advance(clk.Now().Truncate(time.Minute).Add(70 * time.Second).Sub(clk.Now())) // 12:01:10: the first slot left the window
	v, ok = valueOf(t, e, "h", "")
	require.True(t, ok)
	assert.InDelta(t, 0.2, v, 1e-9)
}

func TestDeltaHistogramsMergeAcrossSlots(t *testing.T) {
	delta := pmetric.AggregationTemporalityDelta
	e, clk, _ := newTestEngine(t, testConfig(RuleConfig{Name: "h", Metric: "d", Stat: StatP50, Window: 20 * time.Second, Op: OpGT, Threshold: 0}))
	e.consumeMetrics(histogramMetrics("d", delta, 0, []float64{10, 20}, []uint64{4, 0, 0}, 20))
	clk.Advance(10 * time.Second)
	e.consumeMetrics(histogramMetrics("d", delta, 0, []float64{10, 20}, []uint64{0, 4, 0}, 60))
	clk.Advance(time.Second)
	v, _ := valueOf(t, e, "h", "")
	assert.InDelta(t, 10.0, v, 1e-9, "rank 4 of 8 ends the first bucket")
	clk.Advance(19 * time.Second) // the first slot left the window
	v, _ = valueOf(t, e, "h", "")
	assert.InDelta(t, 15.0, v, 1e-9, "rank 2 of 4 in (10,20]")
}

func TestExponentialHistogramPercentiles(t *testing.T) {
	for _, tc := range []struct {
		stat Stat
		want float64
	}{{StatP50, 16}, {StatP90, 16 + 16*(3.2/4)}, {StatCount, 8}, {StatMin, 9}, {StatMax, 30}} {
		e, clk, _ := newTestEngine(t, testConfig(RuleConfig{Name: "x", Metric: "x", Stat: tc.stat, Window: time.Minute, Op: OpGT, Threshold: 0}))
		md := pmetric.NewMetrics()
		m := md.ResourceMetrics().AppendEmpty().ScopeMetrics().AppendEmpty().Metrics().AppendEmpty()
		m.SetName("x")
		h := m.SetEmptyExponentialHistogram()
		h.SetAggregationTemporality(pmetric.AggregationTemporalityDelta)
		dp := h.DataPoints().AppendEmpty()
		dp.SetScale(0) // base 2: bucket 3 is (8,16], bucket 4 is (16,32]
		dp.Positive().SetOffset(3)
		dp.Positive().BucketCounts().FromRaw([]uint64{4, 4})
		dp.SetCount(8)
		dp.SetSum(150)
		dp.SetMin(9)
		dp.SetMax(30)
		e.consumeMetrics(md)
		clk.Advance(time.Second)
		v, ok := valueOf(t, e, "x", "")
		require.True(t, ok)
		assert.InDelta(t, tc.want, v, 1e-9, tc.stat)
	}
}

func TestCumulativeExponentialHistogramDelta(t *testing.T) {
	e, clk, _ := newTestEngine(t, testConfig(RuleConfig{Name: "x", Metric: "x", Stat: StatP50, Window: time.Minute, Op: OpGT, Threshold: 0}))
	start := pcommon.NewTimestampFromTime(clk.Now().Add(-time.Hour))
	mk := func(counts []uint64) pmetric.Metrics {
		return expHistMetrics("x", pmetric.AggregationTemporalityCumulative, start, false, 3, counts)
	}
	e.consumeMetrics(mk([]uint64{100, 0})) // baseline: all in (8,16]
	e.consumeMetrics(mk([]uint64{100, 4})) // the window only saw 4 in (16,32]
	clk.Advance(time.Second)
	v, _ := valueOf(t, e, "x", "")
	assert.InDelta(t, 24.0, v, 1e-9)
}

func TestSummaryStats(t *testing.T) {
	for _, tc := range []struct {
		stat Stat
		want float64
	}{{StatP99, 42}, {StatP50, 10}, {StatCount, 20}, {StatAvg, 5}, {StatMax, 50}} {
		e, clk, _ := newTestEngine(t, testConfig(RuleConfig{Name: "s", Metric: "s", Stat: tc.stat, Window: time.Minute, Op: OpGT, Threshold: 0}))
		start := pcommon.NewTimestampFromTime(clk.Now().Add(-time.Hour))
		for i, c := range []uint64{100, 120} {
			md := pmetric.NewMetrics()
			m := md.ResourceMetrics().AppendEmpty().ScopeMetrics().AppendEmpty().Metrics().AppendEmpty()
			m.SetName("s")
			dp := m.SetEmptySummary().DataPoints().AppendEmpty()
			dp.SetStartTimestamp(start)
			dp.SetCount(c)
			dp.SetSum(float64(i) * 100) // 0, then 100: +100 over +20 observations
			for q, v := range map[float64]float64{0: 1, 0.5: 10, 0.99: 42, 1: 50} {
				qv := dp.QuantileValues().AppendEmpty()
				qv.SetQuantile(q)
				qv.SetValue(v)
			}
			e.consumeMetrics(md)
		}
		clk.Advance(time.Second)
		v, ok := valueOf(t, e, "s", "")
		require.True(t, ok, tc.stat)
		assert.InDelta(t, tc.want, v, 1e-9, tc.stat)
	}
}

func TestHistogramQuantileEdgeCases(t *testing.T) {
	assert.True(t, math.IsNaN(histogramQuantile(0.5, map[float64]float64{})))
	assert.True(t, math.IsNaN(histogramQuantile(0.5, map[float64]float64{1: 0, math.Inf(1): 0})))
	assert.Equal(t, math.Inf(1), histogramQuantile(1.5, map[float64]float64{1: 1}))
	assert.Equal(t, math.Inf(-1), histogramQuantile(-0.5, map[float64]float64{1: 1}))
	// First bucket with a positive upper bound interpolates from 0.
	assert.InDelta(t, 5.0, histogramQuantile(0.5, map[float64]float64{10: 2, math.Inf(1): 0}), 1e-9)
}

func TestMetricDataOtherThanRulesIsIgnored(t *testing.T) {
	e, _, _ := newTestEngine(t, testConfig(RuleConfig{Name: "c", Metric: "c", Stat: StatIncrease, Op: OpGT, Threshold: 0}))
	e.consumeMetrics(gaugeMetrics("unrelated", nil, 1, 2, 3))
	assert.Empty(t, e.series.series)
}

func TestStalenessMarkersAndNaNAreSkipped(t *testing.T) {
	e, clk, _ := newTestEngine(t, testConfig(RuleConfig{Name: "g", Metric: "m", Stat: StatCount, Window: time.Minute, Op: OpGT, Threshold: 0}))
	md := gaugeMetrics("m", nil, 1, math.NaN(), 3)
	md.ResourceMetrics().At(0).ScopeMetrics().At(0).Metrics().At(0).Gauge().DataPoints().At(2).SetFlags(pmetric.DefaultDataPointFlags.WithNoRecordedValue(true))
	e.consumeMetrics(md)
	clk.Advance(time.Second)
	v, _ := valueOf(t, e, "g", "")
	assert.Equal(t, 1.0, v)
}

// Negative values of magnitude below 1 land in negative-range buckets with
// negative indexes; they must be read as negative buckets (issue 14), in
// both temporalities.
func TestExponentialHistogramNegativeBucketsBelowOne(t *testing.T) {
	mk := func(temp pmetric.AggregationTemporality, start pcommon.Timestamp, counts []uint64) pmetric.Metrics {
		// Scale 0: negative bucket -2 holds [-0.5, -0.25), bucket -1 holds [-1, -0.5).
		return expHistMetrics("x", temp, start, true, -2, counts)
	}
	for _, stat := range []Stat{StatP50, StatP99} {
		t.Run("delta "+stat.String(), func(t *testing.T) {
			e, clk, _ := newTestEngine(t, testConfig(RuleConfig{Name: "x", Metric: "x", Stat: stat, Window: time.Minute, Op: OpGT, Threshold: 0}))
			e.consumeMetrics(mk(pmetric.AggregationTemporalityDelta, 0, []uint64{4, 4}))
			clk.Advance(time.Second)
			v, ok := valueOf(t, e, "x", "")
			require.True(t, ok)
			assert.GreaterOrEqual(t, v, -1.0)
			assert.LessOrEqual(t, v, -0.25)
		})
		t.Run("cumulative "+stat.String(), func(t *testing.T) {
			e, clk, _ := newTestEngine(t, testConfig(RuleConfig{Name: "x", Metric: "x", Stat: stat, Window: time.Minute, Op: OpGT, Threshold: 0}))
			start := pcommon.NewTimestampFromTime(clk.Now().Add(-time.Hour))
			e.consumeMetrics(mk(pmetric.AggregationTemporalityCumulative, start, []uint64{4, 0})) // baseline
			e.consumeMetrics(mk(pmetric.AggregationTemporalityCumulative, start, []uint64{4, 6})) // +6 in [-1, -0.5)
			clk.Advance(time.Second)
			v, ok := valueOf(t, e, "x", "")
			require.True(t, ok)
			assert.GreaterOrEqual(t, v, -1.0)
			assert.LessOrEqual(t, v, -0.5)
		})
	}
}

// expHistMetrics is metric name with one scale-0 exponential-histogram
// point: counts from bucket offset of the positive range (the negative one
// when neg); its count is their sum.
func expHistMetrics(name string, temp pmetric.AggregationTemporality, start pcommon.Timestamp, neg bool, offset int32, counts []uint64) pmetric.Metrics {
	md := pmetric.NewMetrics()
	m := md.ResourceMetrics().AppendEmpty().ScopeMetrics().AppendEmpty().Metrics().AppendEmpty()
	m.SetName(name)
	h := m.SetEmptyExponentialHistogram()
	h.SetAggregationTemporality(temp)
	dp := h.DataPoints().AppendEmpty()
	dp.SetStartTimestamp(start)
	buckets := dp.Positive()
	if neg {
		buckets = dp.Negative()
	}
	buckets.SetOffset(offset)
	buckets.BucketCounts().FromRaw(counts)
	var n uint64
	for _, c := range counts {
		n += c
	}
	dp.SetCount(n)
	return md
}

// recordingSink is a notifySink that keeps what it is handed.
type recordingSink struct {
	mu  sync.Mutex
	got []Notification
}

func (s *recordingSink) notify(n Notification) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.got = append(s.got, n)
}

func (s *recordingSink) len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.got)
}

func (s *recordingSink) refresh() time.Duration { return 0 }

func (s *recordingSink) shutdown(context.Context) {}

func TestEngineEvaluatesOnItsClock(t *testing.T) {
	e, clk, _ := newTestEngine(t, testConfig(RuleConfig{Name: "quiet", Event: "e", Stat: StatCount, Window: time.Minute, Op: OpLT, Threshold: 1}))
	started := clk.Now()
	sink := &recordingSink{}
	e.start(sink)
	t.Cleanup(func() { _ = e.shutdown(context.Background()) })
	runClock(t, clk, func() bool { return sink.len() == 1 })
	sink.mu.Lock()
	defer sink.mu.Unlock()
	assert.Equal(t, "quiet", sink.got[0].Rule)
	assert.Equal(t, started.Add(e.cfg.EvaluationInterval), sink.got[0].At, "the first evaluation is one interval after the start")
}

// Every transition series exists at 0 before the first transition, so that
// a scraper's increase() counts the first one.
func TestTransitionsExposedAtZeroFromTheStart(t *testing.T) {
	_, _, tt := newTestEngine(t, testConfig(RuleConfig{
		Name: "depth", Metric: "anvil.queue.depth", Window: 10 * time.Second, Op: OpGT, Threshold: 5,
	}))
	m, err := tt.GetMetric("otelcol_alert_transitions")
	require.NoError(t, err)
	sum, ok := m.Data.(metricdata.Sum[int64])
	require.True(t, ok, "%T", m.Data)
	got := map[string]int64{}
	for _, dp := range sum.DataPoints {
		rule, _ := dp.Attributes.Value("rule")
		from, _ := dp.Attributes.Value("from")
		to, _ := dp.Attributes.Value("to")
		got[rule.AsString()+":"+from.AsString()+"->"+to.AsString()] = dp.Value
	}
	assert.Equal(t, map[string]int64{
		"depth:inactive->pending": 0, "depth:pending->inactive": 0, "depth:pending->firing": 0,
		"depth:inactive->firing": 0, "depth:firing->resolved": 0,
	}, got)
}

// min_count: a window with fewer observations than min_count gives no
// verdict. Observations are events, a histogram's (or summary's) observations,
// and gauge or sum data points; a cumulative series' first point (a baseline)
// adds none.
func TestMinCountNeedsObservationsInTheWindow(t *testing.T) {
	cum := pmetric.AggregationTemporalityCumulative
	before := func(clk *fakeClock) pcommon.Timestamp { return pcommon.NewTimestampFromTime(clk.Now().Add(-time.Hour)) }
	tests := []struct {
		name  string
		rule  RuleConfig
		short func(e *engine, clk *fakeClock) // 4 observations
		more  func(e *engine, clk *fakeClock) // the fifth
	}{
		{
			name: "events",
			rule: RuleConfig{Name: "r", Event: "ev", Field: "v", Stat: StatAvg, Op: OpLT, Threshold: 0.4},
			short: func(e *engine, _ *fakeClock) {
				e.consumeLogs(eventLogs("ev", "v", nil, 0.1, 0.1, 0.1, 0.1))
			},
			more: func(e *engine, _ *fakeClock) { e.consumeLogs(eventLogs("ev", "v", nil, 0.1)) },
		},
		{
			name: "gauge points",
			rule: RuleConfig{Name: "r", Metric: "g", Stat: StatMax, Op: OpGT, Threshold: 0},
			short: func(e *engine, _ *fakeClock) {
				e.consumeMetrics(gaugeMetrics("g", nil, 1, 1, 1, 1))
			},
			more: func(e *engine, _ *fakeClock) { e.consumeMetrics(gaugeMetrics("g", nil, 1)) },
		},
		{
			name: "cumulative sum points with an increase",
			rule: RuleConfig{Name: "r", Metric: "c", Stat: StatIncrease, Op: OpGT, Threshold: 0},
			short: func(e *engine, clk *fakeClock) {
				for _, v := range []int64{100, 101, 102, 103, 104} { // a baseline, then 4 increases
					e.consumeMetrics(sumMetrics("c", cum, before(clk), v))
				}
			},
			more: func(e *engine, clk *fakeClock) { e.consumeMetrics(sumMetrics("c", cum, before(clk), 105)) },
		},
		{
			name: "histogram observations",
			rule: RuleConfig{Name: "r", Metric: "h", Stat: StatAvg, Op: OpGT, Threshold: 0},
			short: func(e *engine, clk *fakeClock) {
				e.consumeMetrics(histogramMetrics("h", cum, before(clk), []float64{1}, []uint64{100, 0}, 50)) // baseline
				e.consumeMetrics(histogramMetrics("h", cum, before(clk), []float64{1}, []uint64{104, 0}, 52))
			},
			more: func(e *engine, clk *fakeClock) {
				e.consumeMetrics(histogramMetrics("h", cum, before(clk), []float64{1}, []uint64{105, 0}, 52.5))
			},
		},
		{
			name: "per-event check: every event counts, not only the bad ones",
			rule: RuleConfig{Name: "r", Event: "ev", Field: "v", Op: OpLT, Threshold: 0.4},
			short: func(e *engine, _ *fakeClock) {
				e.consumeLogs(eventLogs("ev", "v", nil, 0.1, 0.9, 0.9, 0.9))
			},
			more: func(e *engine, _ *fakeClock) { e.consumeLogs(eventLogs("ev", "v", nil, 0.9)) },
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.rule.MinCount = 5
			tc.rule.Window = time.Minute
			e, clk, _ := newTestEngine(t, testConfig(tc.rule))
			tc.short(e, clk)
			assert.Empty(t, tick(e, clk), "4 observations: no verdict")
			_, ok := valueOf(t, e, "r", "")
			assert.False(t, ok)
			tc.more(e, clk)
			assert.Equal(t, []string{"firing"}, statuses(tick(e, clk)), "5 observations")
		})
	}
}

// A count rule with min_count: a quiet window gives no verdict, so
// `count < 1` does not fire on silence.
func TestMinCountSilencesAnAbsenceRule(t *testing.T) {
	e, clk, _ := newTestEngine(t, testConfig(RuleConfig{Name: "quiet", Event: "e", Stat: StatCount, Window: time.Minute, Op: OpLT, Threshold: 3, MinCount: 1}))
	assert.Empty(t, tick(e, clk), "nothing arrived: no verdict")
	e.consumeLogs(eventLogs("e", "", nil, 0))
	assert.Equal(t, []string{"firing"}, statuses(tick(e, clk)), "1 event, fewer than 3")
}

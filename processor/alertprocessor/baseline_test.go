package alertprocessor

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"
)

// agreementDrop is the baseline rule: the hourly average agreement
// of a queue and dimension against its own 24 h that ended an hour ago.
var agreementDrop = RuleConfig{
	Name: "agreement_drop", Metric: "anvil.agreement.score", Stat: StatAvg, Window: time.Hour,
	Baseline: &BaselineConfig{Window: 24 * time.Hour, Offset: time.Hour}, Compare: CompareRatio,
	Op: OpLT, Threshold: 0.8, MinCount: 20, GroupBy: []string{"queue_id", "dimension"},
}

// baselineConfig is rules at the shipped evaluation_interval, 15 s.
func baselineConfig(rules ...RuleConfig) *Config {
	cfg := testConfig(rules...)
	cfg.EvaluationInterval = 15 * time.Second
	return cfg
}

// agreementBounds are the bucket bounds of anvil.agreement.score as the anvil
// receiver sends it: every 0.05 from 0 to 1, and the largest float64 below 0.4.
var agreementBounds = func() []float64 {
	b := []float64{math.Nextafter(0.4, 0)}
	for i := 0; i <= 20; i++ {
		b = append(b, float64(i)/20)
	}
	slices.Sort(b)
	return b
}()

// agreementSeries is one cumulative explicit-bucket histogram series of
// anvil.agreement.score, with its start timestamp, as the anvil receiver
// exports it.
type agreementSeries struct {
	labels map[string]string
	start  time.Time
	counts []uint64
	count  uint64
	sum    float64
}

func newAgreementSeries(start time.Time, queue, dimension string) *agreementSeries {
	return &agreementSeries{labels: map[string]string{"queue_id": queue, "dimension": dimension}, start: start,
		counts: make([]uint64, len(agreementBounds)+1)}
}

// observe records n scores of v.
func (s *agreementSeries) observe(v float64, n int) {
	i, _ := slices.BinarySearch(agreementBounds, v) // the first bound >= v
	s.counts[i] += uint64(n)
	s.count += uint64(n)
	s.sum += v * float64(n)
}

// agreementMetrics is one export at ts: each series' cumulative point.
func agreementMetrics(ts time.Time, series ...*agreementSeries) pmetric.Metrics {
	md := pmetric.NewMetrics()
	m := md.ResourceMetrics().AppendEmpty().ScopeMetrics().AppendEmpty().Metrics().AppendEmpty()
	m.SetName("anvil.agreement.score")
	h := m.SetEmptyHistogram()
	h.SetAggregationTemporality(pmetric.AggregationTemporalityCumulative)
	for _, s := range series {
		dp := h.DataPoints().AppendEmpty()
		dp.SetStartTimestamp(pcommon.NewTimestampFromTime(s.start))
		dp.SetTimestamp(pcommon.NewTimestampFromTime(ts))
		dp.ExplicitBounds().FromRaw(agreementBounds)
		dp.BucketCounts().FromRaw(s.counts)
		dp.SetCount(s.count)
		dp.SetSum(s.sum)
		for k, v := range s.labels {
			dp.Attributes().PutStr(k, v)
		}
	}
	return md
}

// agreementFeed drives an engine through time: every evaluation interval
// each series records two scores, one of its level at the start of the
// interval and one half way through, and is exported; then the rules are
// evaluated.
type agreementFeed struct {
	clk      *fakeClock
	engine   func() *engine
	series   []*agreementSeries
	level    func(s *agreementSeries, at time.Time) float64
	notified []Notification
}

// step is one evaluation interval; it returns its notifications.
func (f *agreementFeed) step() []Notification {
	now := f.clk.Now()
	e := f.engine()
	for _, s := range f.series {
		s.observe(f.level(s, now), 1)
		s.observe(f.level(s, now.Add(e.cfg.EvaluationInterval/2)), 1)
	}
	e.consumeMetrics(agreementMetrics(now, f.series...))
	f.clk.Advance(e.cfg.EvaluationInterval)
	ns := e.evaluateRules()
	f.notified = append(f.notified, ns...)
	return ns
}

// until steps while the clock is before t.
func (f *agreementFeed) until(t time.Time) {
	for f.clk.Now().Before(t) {
		f.step()
	}
}

// readingOf evaluates rule name's group of labels as evaluate would.
func readingOf(t *testing.T, e *engine, name string, labels map[string]string) reading {
	t.Helper()
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, ar := range e.rules {
		if r := ar.alerts(); r.name == name {
			g, ok := r.groups[r.groupKey(labels)]
			if !ok {
				return reading{value: math.NaN(), current: math.NaN(), baseline: math.NaN()}
			}
			return r.read(g, e.now())
		}
	}
	t.Fatalf("no rule %q", name)
	return reading{}
}

func groupOf(t *testing.T, e *engine, name string, labels map[string]string) *group {
	t.Helper()
	for _, ar := range e.rules {
		if r := ar.alerts(); r.name == name {
			g := r.groups[r.groupKey(labels)]
			require.NotNil(t, g, "%s %v", name, labels)
			return g
		}
	}
	t.Fatalf("no rule %q", name)
	return nil
}

var (
	q1bbox = map[string]string{"queue_id": "q1", "dimension": "bbox"}
	q2bbox = map[string]string{"queue_id": "q2", "dimension": "bbox"}
)

// The case: a queue's agreement falls from a steady 0.75 to 0.5
// 26 h after its first score, between the two scores of an export; the
// queue beside it stays at 0.75. Two scores per 15 s, so the 1 h window holds
// 480 scores; k exports into the drop, 2k − 1 of them are 0.5, the hour's
// average is 0.75 − 0.25·(2k − 1)/480 and the baseline (the 24 h that ended
// an hour ago) is still 0.75: the ratio 1 − (2k − 1)/1440 is 0.8007 at
// k = 144 and 0.7993 at k = 145, where the average first falls below
// 0.8 × 0.75 = 0.6. That evaluation must fire. The steady queue never fires.
func TestBaselineRatioFiresOnADropAndNotBesideIt(t *testing.T) {
	e, clk, _ := newTestEngine(t, baselineConfig(agreementDrop))
	t0 := clk.Now()
	dropAt := t0.Add(26*time.Hour + 5*time.Second)
	f := &agreementFeed{clk: clk, engine: func() *engine { return e },
		series: []*agreementSeries{newAgreementSeries(t0, "q1", "bbox"), newAgreementSeries(t0, "q2", "bbox")},
		level: func(s *agreementSeries, at time.Time) float64 {
			if s.labels["queue_id"] == "q1" && !at.Before(dropAt) {
				return 0.5
			}
			return 0.75
		}}
	f.until(t0.Add(26 * time.Hour))
	require.Empty(t, f.notified, "steady for 26 h")
	steady := readingOf(t, e, "agreement_drop", q2bbox)
	require.True(t, steady.ok, "a verdict, not silence")
	assert.Equal(t, 1.0, steady.value)

	for k := 1; k <= 144; k++ {
		require.Empty(t, f.step(), "k=%d: the hour's average is still above 0.6", k)
	}
	rd := readingOf(t, e, "agreement_drop", q1bbox)
	assert.InDelta(t, 0.75-0.25*287/480, rd.current, 1e-12, "k=144")
	assert.Greater(t, rd.current, 0.6)
	assert.Equal(t, 0.75, rd.baseline)

	ns := f.step() // k = 145
	require.Equal(t, []string{"firing"}, statuses(ns), "fires at the first evaluation with the average below 0.6")
	n := ns[0]
	assert.Equal(t, t0.Add(26*time.Hour+145*15*time.Second), n.At)
	assert.Equal(t, q1bbox, n.Labels)
	wantCurrent := 0.75 - 0.25*289/480
	assert.Less(t, wantCurrent, 0.6)
	assert.InDelta(t, wantCurrent, n.Current, 1e-12)
	assert.Equal(t, 0.75, n.Baseline)
	assert.InDelta(t, wantCurrent/0.75, n.Value, 1e-12)
	assert.Equal(t, "ratio", n.Compare)
	assert.Equal(t, fmt.Sprintf("agreement_drop: %v vs baseline 0.75 (ratio %v < 0.8)", n.Current, n.Value), n.Summary,
		"the default summary of a baseline rule")

	f.until(dropAt.Add(2 * time.Hour))
	assert.Len(t, f.notified, 1, "the steady queue never fired; the dropping one fired once")
	assert.Equal(t, q1bbox, f.notified[0].Labels)
	steady = readingOf(t, e, "agreement_drop", q2bbox)
	require.True(t, steady.ok)
	assert.Equal(t, 1.0, steady.value)
}

// A slow drift from 0.75 to 0.5 spread evenly over 36 h (longer than the
// baseline's 25 h reach) never moves an hour 20 % below the day before it.
func TestBaselineRatioIgnoresASlowDrift(t *testing.T) {
	e, clk, _ := newTestEngine(t, baselineConfig(agreementDrop))
	t0 := clk.Now()
	driftFrom, drift := t0.Add(25*time.Hour), 36*time.Hour
	f := &agreementFeed{clk: clk, engine: func() *engine { return e },
		series: []*agreementSeries{newAgreementSeries(t0, "q1", "bbox")},
		level: func(_ *agreementSeries, at time.Time) float64 {
			d := min(max(at.Sub(driftFrom), 0), drift)
			return 0.75 - 0.25*float64(d)/float64(drift)
		}}
	lowest := math.Inf(1)
	for clk.Now().Before(driftFrom.Add(drift + 2*time.Hour)) {
		require.Empty(t, f.step(), "at %v", clk.Now().Sub(t0))
		if rd := readingOf(t, e, "agreement_drop", q1bbox); rd.ok {
			lowest = min(lowest, rd.value)
		}
	}
	assert.Greater(t, lowest, 0.8)
	assert.Less(t, lowest, 0.9, "the drift was seen: the hour fell below its baseline")
}

// min_count applies to each window: an hour of a few very low scores is no
// verdict, nor is a busy hour against a baseline of a few scores.
func TestBaselineMinCountInEachWindow(t *testing.T) {
	e, clk, _ := newTestEngine(t, baselineConfig(agreementDrop))
	t0 := clk.Now()
	quiet := newAgreementSeries(t0, "q1", "bbox")
	sparse := newAgreementSeries(t0, "q3", "bbox")
	export := func(s ...*agreementSeries) { e.consumeMetrics(agreementMetrics(clk.Now(), s...)) }
	tick := func() []Notification { return tick(e, clk) }
	// 26 h of q1 busy at 0.75, then an hour of silence (its window empties,
	// its history stays); q3 one score every 2 h.
	for i := 0; clk.Now().Before(t0.Add(27 * time.Hour)); i++ {
		if clk.Now().Before(t0.Add(26 * time.Hour)) {
			quiet.observe(0.75, 2)
			export(quiet)
		}
		if i%480 == 0 {
			sparse.observe(0.75, 1)
			export(sparse)
		}
		require.Empty(t, tick())
	}
	assert.Empty(t, groupOf(t, e, "agreement_drop", q1bbox).win.slots)
	// 19 scores of 0.1 over the next minutes; q3 a busy hour of 0.1.
	for i := range 19 {
		quiet.observe(0.1, 1)
		export(quiet)
		if i < 5 {
			sparse.observe(0.1, 100)
			export(sparse)
		}
		require.Empty(t, tick(), "19 observations in q1's window; 11 in q3's baseline")
	}
	rd := readingOf(t, e, "agreement_drop", q1bbox)
	assert.False(t, rd.ok)
	assert.InDelta(t, 0.1, rd.current, 1e-9, "there is a value, but not enough observations")
	assert.Equal(t, 0.75, rd.baseline)
	rd = readingOf(t, e, "agreement_drop", map[string]string{"queue_id": "q3", "dimension": "bbox"})
	assert.False(t, rd.ok, "500 observations in the window, but 11 in the baseline (4 h ... 24 h)")
	assert.InDelta(t, 0.1, rd.current, 1e-9)
	assert.Equal(t, 0.75, rd.baseline)

	quiet.observe(0.1, 1)
	export(quiet)
	ns := tick()
	require.Equal(t, []string{"firing"}, statuses(ns), "the 20th observation")
	assert.Equal(t, q1bbox, ns[0].Labels)
}

// A group younger than offset + baseline.window (its first observation less
// than 25 h ago) has no verdict: q1 drops after 24 h, and fires only at the
// evaluation 25 h after its first score.
func TestBaselineNeedsAGroupAsOldAsOffsetPlusWindow(t *testing.T) {
	e, clk, _ := newTestEngine(t, baselineConfig(agreementDrop))
	t0 := clk.Now()
	dropAt := t0.Add(24 * time.Hour)
	f := &agreementFeed{clk: clk, engine: func() *engine { return e },
		series: []*agreementSeries{newAgreementSeries(t0, "q1", "bbox")},
		level: func(_ *agreementSeries, at time.Time) float64 {
			if at.Before(dropAt) {
				return 0.75
			}
			return 0.5
		}}
	f.until(t0.Add(25*time.Hour - 15*time.Second))
	require.Empty(t, f.notified, "the window fell below 0.6 from 24 h 36 m on, but the group is younger than 25 h")
	assert.Equal(t, t0, groupOf(t, e, "agreement_drop", q1bbox).since)
	rd := readingOf(t, e, "agreement_drop", q1bbox)
	assert.False(t, rd.ok)
	assert.InDelta(t, 0.5+0.25/240, rd.current, 1e-12)
	assert.True(t, math.IsNaN(rd.baseline), "no baseline yet")

	ns := f.step()
	require.Equal(t, []string{"firing"}, statuses(ns))
	assert.Equal(t, t0.Add(25*time.Hour), ns[0].At, "the first evaluation at which the group is 25 h old")
	assert.Equal(t, 0.5, ns[0].Current)
	assert.Equal(t, 0.75, ns[0].Baseline)
}

// compare: difference: the value is the window's statistic minus the
// baseline's. A gauge queue depth steady at 5 goes to 20: the hour's average
// 5 + 15·k/240 exceeds the baseline by more than 10 from k = 161.
func TestBaselineDifference(t *testing.T) {
	e, clk, _ := newTestEngine(t, baselineConfig(RuleConfig{
		Name: "depth_rise", Metric: "anvil.queue.depth", Stat: StatAvg, Window: time.Hour,
		Baseline: &BaselineConfig{Window: 24 * time.Hour, Offset: time.Hour}, Compare: CompareDifference,
		Op: OpGT, Threshold: 10, GroupBy: []string{"queue_id"},
	}))
	riseAt := clk.Now().Add(26 * time.Hour)
	depth := func(v float64) []Notification {
		e.consumeMetrics(gaugeMetrics("anvil.queue.depth", map[string]string{"queue_id": "q1"}, v))
		return tick(e, clk)
	}
	for clk.Now().Before(riseAt) {
		require.Empty(t, depth(5))
	}
	for k := 1; k <= 160; k++ {
		require.Empty(t, depth(20), "k=%d: the hour's average at most 15", k)
	}
	fired := depth(20)
	require.Equal(t, []string{"firing"}, statuses(fired))
	assert.Equal(t, riseAt.Add(161*15*time.Second), fired[0].At, "k = 161")
	assert.Equal(t, "difference", fired[0].Compare)
	assert.Equal(t, (5*79+20*161)/240.0, fired[0].Current)
	assert.Equal(t, 5.0, fired[0].Baseline)
	assert.Equal(t, (5*79+20*161)/240.0-5, fired[0].Value)
	assert.Equal(t, "depth_rise: 15.0625 vs baseline 5 (difference 10.0625 > 10)", fired[0].Summary)
}

// Stats that grow with the window's length (count, sum, increase) compare
// the window with the baseline scaled to the window's length: an hour's
// count against the hourly average of the day. avg, rate (already per
// second), quantiles, min, max and last are compared as they are.
func TestBaselineNormalisesCountAndSumToTheWindow(t *testing.T) {
	rule := func(name string, st Stat, field string) RuleConfig {
		return RuleConfig{Name: name, Event: "anvil.label.validation_failed", Field: field, Stat: st, Window: time.Hour,
			Baseline: &BaselineConfig{Window: 24 * time.Hour}, Op: OpGT, Threshold: 3}
	}
	e, clk, _ := newTestEngine(t, baselineConfig(
		rule("count", StatCount, ""), rule("rate", StatRate, ""), rule("sum", StatSum, "v"), rule("avg", StatAvg, "v"),
		rule("max", StatMax, "v"),
	))
	t0 := clk.Now()
	type want struct {
		rule              string
		current, baseline float64
	}
	check := func(ws ...want) {
		t.Helper()
		for _, w := range ws {
			rd := readingOf(t, e, w.rule, nil)
			require.True(t, rd.ok, w.rule)
			assert.InDelta(t, w.current, rd.current, 1e-12, w.rule)
			assert.InDelta(t, w.baseline, rd.baseline, 1e-12, w.rule)
			assert.InDelta(t, w.current/w.baseline, rd.value, 1e-12, w.rule)
		}
	}
	fired := map[string]bool{}
	// One failure (v = 2) every 6 minutes for 25 h, then four every 6 minutes.
	for i := 0; clk.Now().Before(t0.Add(26 * time.Hour)); i++ {
		if i%24 == 0 {
			n := 1
			if !clk.Now().Before(t0.Add(25 * time.Hour)) {
				n = 4
			}
			e.consumeLogs(eventLogs("anvil.label.validation_failed", "v", nil, slices.Repeat([]float64{2}, n)...))
		}
		for _, n := range tick(e, clk) {
			fired[n.Rule] = true
		}
		if clk.Now().Equal(t0.Add(25 * time.Hour)) {
			require.Empty(t, fired)
			// 10 in the hour; 240 in the day (offset 0: the day up to now).
			check(want{"count", 10, 240.0 / 24}, want{"sum", 20, 480.0 / 24},
				want{"rate", 10.0 / 3600, 240.0 / 86400}, // per second either way
				want{"avg", 2, 2}, want{"max", 2, 2})
		}
	}
	// At 26 h: 40 in the hour; the day up to now holds 230 + 40.
	check(want{"count", 40, 270.0 / 24}, want{"sum", 80, 540.0 / 24},
		want{"rate", 40.0 / 3600, 270.0 / 86400}, want{"avg", 2, 2}, want{"max", 2, 2})
	assert.Equal(t, map[string]bool{"count": true, "rate": true, "sum": true}, fired, "avg and max did not change")
}

// A ratio to a baseline of 0 is no verdict (no division by zero); the
// difference is.
func TestBaselineRatioToZeroIsNoVerdict(t *testing.T) {
	rule := func(name string, c Compare) RuleConfig {
		return RuleConfig{Name: name, Event: "e", Stat: StatCount, Window: time.Hour,
			Baseline: &BaselineConfig{Window: 24 * time.Hour, Offset: time.Hour}, Compare: c, Op: OpGT, Threshold: 3}
	}
	e, clk, _ := newTestEngine(t, baselineConfig(rule("ratio", CompareRatio), rule("difference", CompareDifference)))
	e.consumeLogs(eventLogs("e", "", nil, 0)) // the first event: the groups begin
	clk.Advance(27 * time.Hour)
	require.Empty(t, e.evaluateRules(), "a quiet day: 0 against 0")
	e.consumeLogs(eventLogs("e", "", nil, make([]float64, 50)...))
	ns := tick(e, clk)
	require.Len(t, ns, 1)
	assert.Equal(t, "difference", ns[0].Rule)
	assert.Equal(t, 50.0, ns[0].Value)
	rd := readingOf(t, e, "ratio", nil)
	assert.False(t, rd.ok)
	assert.True(t, math.IsNaN(rd.value))
	assert.Equal(t, 50.0, rd.current)
	assert.Equal(t, 0.0, rd.baseline)
}

// The history is kept in slots of max(evaluation_interval,
// baseline.window / 144, (offset + baseline.window) / 576): at most
// ceil((offset + baseline.window) / width) + 2 of them per group.
func TestHistorySlotWidth(t *testing.T) {
	for _, tc := range []struct {
		window, offset time.Duration
		width          time.Duration
		slots          int
	}{
		{24 * time.Hour, time.Hour, 10 * time.Minute, 152},
		{24 * time.Hour, 0, 10 * time.Minute, 146},
		{time.Hour, 0, 25 * time.Second, 146},
		{10 * time.Minute, 0, 15 * time.Second, 42},                        // not narrower than evaluation_interval
		{time.Hour, 167 * time.Hour, 17*time.Minute + 30*time.Second, 578}, // a week back: 576 slots over 168 h
	} {
		rc := RuleConfig{Name: "r", Event: "e", Stat: StatCount, Window: 10 * time.Minute,
			Baseline: &BaselineConfig{Window: tc.window, Offset: tc.offset}, Op: OpGT}
		b := newBaseline(&rc, StatCount, 15*time.Second)
		assert.Equal(t, tc.width, b.width, "%v offset %v", tc.window, tc.offset)
		assert.Equal(t, tc.slots, b.maxSlots(), "%v offset %v", tc.window, tc.offset)
	}
}

// Over three days of scores every 15 s, a group holds at most
// window/15 s + 2 window slots and 25 h / 10 min + 2 history slots.
func TestBaselineMemoryStaysBoundedOverThreeDays(t *testing.T) {
	e, clk, _ := newTestEngine(t, baselineConfig(agreementDrop))
	t0 := clk.Now()
	f := &agreementFeed{clk: clk, engine: func() *engine { return e },
		series: []*agreementSeries{newAgreementSeries(t0, "q1", "bbox")},
		level:  func(*agreementSeries, time.Time) float64 { return 0.75 }}
	r := e.rules[0].alerts()
	require.Equal(t, 10*time.Minute, r.base.width)
	var maxWin, maxHist int
	for clk.Now().Before(t0.Add(72 * time.Hour)) {
		f.step()
		g := groupOf(t, e, "agreement_drop", q1bbox)
		maxWin, maxHist = max(maxWin, len(g.win.slots)), max(maxHist, len(g.hist.slots))
	}
	assert.LessOrEqual(t, maxWin, 242)
	assert.LessOrEqual(t, maxHist, r.base.maxSlots())
	assert.Equal(t, 152, r.base.maxSlots())
	g := groupOf(t, e, "agreement_drop", q1bbox)
	assert.GreaterOrEqual(t, len(g.hist.slots), 150, "the history reaches 25 h back")
	assert.Equal(t, t0.Add(72*time.Hour-25*time.Hour), g.hist.slots[0].start,
		"the oldest slot is the first that ends after now − 25 h")
	var doc savedRule
	require.NoError(t, json.Unmarshal(encodeRule(r), &doc))
	require.Len(t, doc.Groups, 1)
	assert.Len(t, doc.Groups[0].History, len(g.hist.slots), "the saved history is as bounded")
}

// A restart mid-baseline keeps it: 12 h of history saved through the
// storage extension, loaded into a new engine, and the drop fires at the
// evaluation it fires at without the restart, with the same values.
func TestBaselineSurvivesARestart(t *testing.T) {
	scenario := func(t *testing.T, restartAt time.Duration) []Notification {
		p := newReplica(t, baselineConfig(agreementDrop))
		p.start()
		t0 := p.clk.Now()
		dropAt := t0.Add(26 * time.Hour)
		f := &agreementFeed{clk: p.clk, engine: func() *engine { return p.e },
			series: []*agreementSeries{newAgreementSeries(t0, "q1", "bbox"), newAgreementSeries(t0, "q2", "bbox")},
			level: func(s *agreementSeries, at time.Time) float64 {
				if s.labels["queue_id"] == "q1" && !at.Before(dropAt) {
					return 0.5
				}
				return 0.75
			}}
		if restartAt > 0 {
			f.until(t0.Add(restartAt))
			before := groupOf(t, p.e, "agreement_drop", q1bbox)
			hist := len(before.hist.slots)
			p.stop() // saves
			p.start()
			after := groupOf(t, p.e, "agreement_drop", q1bbox)
			assert.Equal(t, t0, after.since, "the group's age is kept")
			assert.Len(t, after.hist.slots, hist, "the history is kept")
		}
		f.until(dropAt.Add(time.Hour))
		return f.notified
	}
	want := scenario(t, 0)
	got := scenario(t, 12*time.Hour)
	require.Len(t, want, 1)
	require.Len(t, got, 1)
	assert.Equal(t, want[0].At, got[0].At)
	assert.Equal(t, want[0].Labels, got[0].Labels)
	assert.Equal(t, want[0].Value, got[0].Value)
	assert.Equal(t, want[0].Current, got[0].Current)
	assert.Equal(t, want[0].Baseline, got[0].Baseline)
}

// The saved state of a baseline rule holds the group's first observation,
// its history and the values behind its last notification.
func TestBaselineStateFormat(t *testing.T) {
	p := newReplica(t, baselineConfig(agreementDrop))
	p.start()
	s := newAgreementSeries(p.clk.Now(), "q1", "bbox")
	s.observe(0.75, 3)
	p.e.consumeMetrics(agreementMetrics(p.clk.Now(), s))
	p.tick()
	b, err := p.e.store.client.Get(context.Background(), "rule/agreement_drop")
	require.NoError(t, err)
	var doc map[string]any
	require.NoError(t, json.Unmarshal(b, &doc))
	assert.Equal(t, "ratio", doc["compare"])
	g := doc["groups"].([]any)[0].(map[string]any)
	assert.Equal(t, "2026-01-01T12:00:00Z", g["since"])
	assert.NotContains(t, g, "baseline", "no notification yet: 0, left out")
	h := g["history"].([]any)
	require.Len(t, h, 1)
	assert.Equal(t, map[string]any{"start": "2026-01-01T12:00:00Z", "obs": 3.0, "n": 3.0, "sum": 2.25, "inc": 3.0}, h[0])
}

// A rule's baseline settings are part of its fingerprint: a changed
// baseline does not resume a history of another meaning.
func TestBaselineSettingsChangeTheFingerprint(t *testing.T) {
	fp := func(mut func(rc *RuleConfig)) string {
		rc := agreementDrop
		b := *rc.Baseline
		rc.Baseline = &b
		mut(&rc)
		ar, err := compileRule(rc, 15*time.Second, &ruleEnv{})
		require.NoError(t, err)
		return ar.alerts().fp
	}
	seen := map[string]string{}
	for name, mut := range map[string]func(*RuleConfig){
		"as is":           func(*RuleConfig) {},
		"baseline.window": func(rc *RuleConfig) { rc.Baseline.Window = 48 * time.Hour },
		"baseline.offset": func(rc *RuleConfig) { rc.Baseline.Offset = 0 },
		"compare":         func(rc *RuleConfig) { rc.Compare = CompareDifference },
		"min_count":       func(rc *RuleConfig) { rc.MinCount = 10 },
		"no baseline":     func(rc *RuleConfig) { rc.Baseline, rc.Compare = nil, CompareUnset },
	} {
		f := fp(mut)
		assert.NotContains(t, seen, f, "%s has the fingerprint of %s", name, seen[f])
		seen[f] = name
	}
	assert.Equal(t, fp(func(*RuleConfig) {}), fp(func(rc *RuleConfig) { rc.Compare = CompareUnset }), "ratio is the default")
	assert.Equal(t, fp(func(*RuleConfig) {}), fp(func(rc *RuleConfig) { rc.Summary, rc.For = "x", time.Minute }))
}

// Summary templates see .Current (the window's statistic) and, for baseline
// rules, .Baseline and .Compare; .Value is what is compared with the
// threshold. A rule without baseline has .Current = .Value and a NaN .Baseline.
func TestSummaryTemplateBaselineFields(t *testing.T) {
	base := RuleConfig{Name: "spike", Event: "e", Stat: StatCount, Window: time.Hour,
		Baseline: &BaselineConfig{Window: 24 * time.Hour, Offset: time.Hour}, Compare: CompareDifference, Op: OpGT, Threshold: 3,
		Summary: `{{ .Current }} against {{ printf "%.1f" .Baseline }} ({{ .Compare }} {{ .Value }})`}
	plain := RuleConfig{Name: "plain", Event: "e", Stat: StatCount, Window: time.Hour, Op: OpGT, Threshold: 3,
		Summary: `{{ .Value }} {{ .Current }} {{ .Baseline }} [{{ .Compare }}]`}
	e, clk, _ := newTestEngine(t, baselineConfig(base, plain))
	e.consumeLogs(eventLogs("e", "", nil, 0))
	clk.Advance(27 * time.Hour)
	require.Empty(t, e.evaluateRules())
	e.consumeLogs(eventLogs("e", "", nil, 0, 0, 0, 0, 0))
	ns := tick(e, clk)
	require.Len(t, ns, 2)
	slices.SortFunc(ns, func(a, b Notification) int { return strings.Compare(a.Rule, b.Rule) })
	assert.Equal(t, "5 5 NaN []", ns[0].Summary)
	assert.Equal(t, "", ns[0].Compare, "a plain rule's notification has no baseline")
	assert.Equal(t, "5 against 0.0 (difference 5)", ns[1].Summary)
}

// A baseline rule that leaves the config while firing is resolved at the
// next start with the values of its last notification.
func TestRemovedBaselineRuleIsResolvedWithItsValues(t *testing.T) {
	rule := RuleConfig{Name: "spike", Event: "e", Stat: StatCount, Window: time.Hour,
		Baseline: &BaselineConfig{Window: 24 * time.Hour, Offset: time.Hour}, Compare: CompareDifference, Op: OpGT, Threshold: 3}
	p := newReplica(t, baselineConfig(rule))
	p.start().consumeLogs(eventLogs("e", "", nil, 0))
	p.clk.Advance(27 * time.Hour)
	p.e.consumeLogs(eventLogs("e", "", nil, make([]float64, 7)...))
	require.Equal(t, []string{"firing"}, statuses(p.tick()))
	p.stop()
	p.cfg = baselineConfig(exportFailures)
	p.start()
	require.Equal(t, []string{"resolved"}, statuses(p.resolved))
	n := p.resolved[0]
	assert.Equal(t, "difference", n.Compare)
	assert.Equal(t, 7.0, n.Value)
	assert.Equal(t, 7.0, n.Current)
	assert.Equal(t, 0.0, n.Baseline)
}

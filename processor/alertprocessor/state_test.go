package alertprocessor

import (
	"context"
	"encoding/json"
	"math"
	"testing"
	"time"

	"github.com/open-telemetry/opentelemetry-collector-contrib/extension/storage/filestorage"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/extension"
	"go.opentelemetry.io/collector/extension/extensiontest"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/otel/attribute"
)

// storageHost is a host holding one storage extension.
type storageHost struct {
	component.Host
	exts map[component.ID]component.Component
}

func (h storageHost) GetExtensions() map[component.ID]component.Component { return h.exts }

var fileStorageID = component.MustNewID("file_storage")

// startFileStorage runs a real file_storage extension on dir and returns a
// host that holds it.
func startFileStorage(t *testing.T, dir string) component.Host {
	t.Helper()
	f := filestorage.NewFactory()
	cfg := f.CreateDefaultConfig().(*filestorage.Config)
	cfg.Directory = dir
	cfg.Compaction.Directory = dir
	ext, err := f.Create(context.Background(), extensiontest.NewNopSettings(f.Type()), cfg)
	require.NoError(t, err)
	require.NoError(t, ext.Start(context.Background(), componenttest.NewNopHost()))
	t.Cleanup(func() { _ = ext.Shutdown(context.Background()) })
	return storageHost{Host: componenttest.NewNopHost(), exts: map[component.ID]component.Component{fileStorageID: extension.Extension(ext)}}
}

// replica is one process of the alert engine on persisted state: every
// start opens the same storage directory; the clock runs on across restarts.
type replica struct {
	t   *testing.T
	cfg *Config
	dir string
	clk *fakeClock
	id  component.ID

	e  *engine
	tt *componenttest.Telemetry
	// resolved holds the notifications restore returned at the last start.
	resolved []Notification
}

func newReplica(t *testing.T, cfg *Config) *replica {
	require.NoError(t, cfg.Validate())
	return &replica{t: t, cfg: cfg, dir: t.TempDir(), clk: newFakeClock(), id: component.MustNewID("alert")}
}

// start builds a fresh engine (a new process) and loads the saved state.
func (p *replica) start() *engine {
	t := p.t
	t.Helper()
	p.tt = componenttest.NewTelemetry()
	tt := p.tt
	t.Cleanup(func() { _ = tt.Shutdown(context.Background()) })
	e, err := newEngine(p.cfg, p.tt.NewTelemetrySettings(), p.clk)
	require.NoError(t, err)
	st, err := openStateStore(context.Background(), startFileStorage(t, p.dir), fileStorageID, p.id)
	require.NoError(t, err)
	p.resolved, err = e.restore(context.Background(), st)
	require.NoError(t, err)
	e.store = st
	p.e = e
	return e
}

// tick advances one evaluation interval and evaluates as the loop does:
// step every alert, then save.
func (p *replica) tick() []Notification {
	p.clk.Advance(p.cfg.EvaluationInterval)
	ns := p.e.evaluateRules()
	p.e.persist(context.Background())
	return ns
}

// kill ends the process without its shutdown (kill -9): what the last
// evaluation saved is all that survives.
func (p *replica) kill() {
	require.NoError(p.t, p.e.store.client.Close(context.Background()))
	p.e = nil
}

// stop is a clean shutdown (it saves).
func (p *replica) stop() {
	require.NoError(p.t, p.e.shutdown(context.Background()))
	p.e = nil
}

var (
	lowAgreement = RuleConfig{
		Name: "low_agreement", Event: "anvil.agreement.low_score", Field: "value", Op: OpLT, Threshold: 0.4,
		GroupBy: []string{"dimension"}, Severity: SeverityCritical,
		Summary: "Inter-rater agreement {{ .Value }} below 0.4 on {{ .Labels.dimension }}",
	}
	exportFailures = RuleConfig{
		Name: "export_failures", Event: "anvil.export.generate.exception", Stat: StatCount, Window: time.Hour,
		Op: OpGE, Threshold: 3, Severity: SeverityError, Summary: "{{ .Value }} export failures in the last hour",
	}
)

func lowScore(dim string, v float64) func(*engine) {
	return func(e *engine) {
		e.consumeLogs(eventLogs("anvil.agreement.low_score", "value", map[string]string{"dimension": dim}, v))
	}
}

func TestRestartWhileFiringResolvesOnceWhenConditionClears(t *testing.T) {
	p := newReplica(t, testConfig(lowAgreement))
	e := p.start()
	lowScore("bbox", 0.2)(e)
	ns := p.tick()
	require.Equal(t, []string{"firing"}, statuses(ns))
	firedAt := ns[0].StartsAt

	p.kill()
	p.clk.Advance(3 * p.cfg.EvaluationInterval) // down a while; no more low scores
	p.start()
	assert.Empty(t, p.resolved, "the rule did not change: nothing resolved at load")
	assert.Equal(t, int64(1), counterValue(t, p.tt, "otelcol_alert_active",
		attribute.String("rule", "low_agreement"), attribute.String("state", "firing")), "firing right after the restart")

	ns = p.tick()
	require.Equal(t, []string{"resolved"}, statuses(ns), "the condition cleared: resolved once")
	assert.Equal(t, map[string]string{"dimension": "bbox"}, ns[0].Labels)
	assert.Equal(t, firedAt, ns[0].StartsAt, "the resolve names the original start")
	assert.Equal(t, dedupKey("low_agreement", map[string]string{"dimension": "bbox"}), ns[0].DedupKey)
	for range 5 {
		assert.Empty(t, p.tick(), "resolved exactly once")
	}

	// And that resolution is itself saved: another restart does not resolve again.
	p.kill()
	p.start()
	assert.Empty(t, p.resolved)
	assert.Empty(t, p.tick())
}

func TestRestartWhileFiringAndStillHoldingDoesNotRepage(t *testing.T) {
	cfg := testConfig(exportFailures)
	cfg.RepeatInterval = time.Minute
	p := newReplica(t, cfg)
	e := p.start()
	e.consumeLogs(eventLogs("anvil.export.generate.exception", "", nil, 0, 0, 0))
	ns := p.tick()
	require.Equal(t, []string{"firing"}, statuses(ns))
	firedAt := p.clk.Now()

	p.clk.Advance(20 * time.Second)
	p.kill()
	p.start()
	// The window still holds the 3 failures: firing, and not paged again.
	for p.clk.Now().Add(cfg.EvaluationInterval).Sub(firedAt) < cfg.RepeatInterval {
		assert.Empty(t, p.tick(), "no re-page after a restart at %v", p.clk.Now().Sub(firedAt))
	}
	// repeat_interval counts from the saved notification time.
	ns = p.tick()
	require.Equal(t, []string{"firing(repeat)"}, statuses(ns))
	assert.Equal(t, firedAt.Add(cfg.RepeatInterval), p.clk.Now())
	v, ok := valueOf(t, p.e, "export_failures", "")
	require.True(t, ok)
	assert.Equal(t, 3.0, v)
}

func TestRestartMidWindowResumesTheWindow(t *testing.T) {
	p := newReplica(t, testConfig(exportFailures))
	e := p.start()
	first := p.clk.Now()
	e.consumeLogs(eventLogs("anvil.export.generate.exception", "", nil, 0, 0))
	assert.Empty(t, p.tick())
	p.kill()
	p.clk.Advance(10 * time.Minute)

	e = p.start()
	e.consumeLogs(eventLogs("anvil.export.generate.exception", "", nil, 0))
	ns := p.tick()
	require.Equal(t, []string{"firing"}, statuses(ns), "2 before the restart + 1 after = 3 in the hour")
	assert.Equal(t, 3.0, ns[0].Value)

	// The slots from before the restart leave the window on time.
	// They leave between window and window + evaluation_interval after arrival.
	p.clk.Advance(first.Add(time.Hour).Sub(p.clk.Now()))
	v, _ := valueOf(t, p.e, "export_failures", "")
	assert.Equal(t, 3.0, v, "an hour after the first failures, their slot is still in the window")
	p.clk.Advance(p.cfg.EvaluationInterval)
	v, _ = valueOf(t, p.e, "export_failures", "")
	assert.Equal(t, 1.0, v, "the two early failures left the window on time")
}

func TestDataSinceTheLastSaveIsAllThatKillLoses(t *testing.T) {
	p := newReplica(t, testConfig(exportFailures))
	e := p.start()
	e.consumeLogs(eventLogs("anvil.export.generate.exception", "", nil, 0))
	p.tick()
	e.consumeLogs(eventLogs("anvil.export.generate.exception", "", nil, 0)) // not yet saved
	p.kill()
	p.start()
	v, _ := valueOf(t, p.e, "export_failures", "")
	assert.Equal(t, 1.0, v, "at most one evaluation interval of data is lost")

	// A clean shutdown saves everything.
	p.e.consumeLogs(eventLogs("anvil.export.generate.exception", "", nil, 0, 0))
	p.stop()
	p.start()
	v, _ = valueOf(t, p.e, "export_failures", "")
	assert.Equal(t, 3.0, v)
}

func TestRestartWhilePendingKeepsForRunning(t *testing.T) {
	r := exportFailures
	r.For = time.Minute
	p := newReplica(t, testConfig(r))
	e := p.start()
	e.consumeLogs(eventLogs("anvil.export.generate.exception", "", nil, 0, 0, 0))
	require.Empty(t, p.tick())
	pendingSince := p.clk.Now()
	assert.Equal(t, int64(1), counterValue(t, p.tt, "otelcol_alert_active",
		attribute.String("rule", "export_failures"), attribute.String("state", "pending")))
	p.kill()
	p.start()
	var ns []Notification
	for len(ns) == 0 && p.clk.Now().Sub(pendingSince) < 2*time.Minute {
		ns = p.tick()
	}
	require.Equal(t, []string{"firing"}, statuses(ns))
	assert.Equal(t, pendingSince.Add(time.Minute), p.clk.Now(), "`for` counts from when it became pending before the restart")
	assert.Equal(t, pendingSince, ns[0].StartsAt)
}

func TestEveryWindowKindSurvivesARestart(t *testing.T) {
	cum := pmetric.AggregationTemporalityCumulative
	rules := []RuleConfig{
		{Name: "hist_p90", Metric: "h", Stat: StatP90, Window: time.Minute, Op: OpGT, Threshold: 1e9},
		{Name: "hist_max", Metric: "h", Stat: StatMax, Window: time.Minute, Op: OpGT, Threshold: 1e9},
		{Name: "counter_inc", Metric: "c", Stat: StatIncrease, Window: time.Minute, Op: OpGT, Threshold: 1e9},
		{Name: "gauge_p50", Metric: "g", Stat: StatP50, Window: time.Minute, Op: OpGT, Threshold: 1e9},
		{Name: "gauge_last", Metric: "g", Stat: StatLast, Window: time.Minute, Op: OpGT, Threshold: 1e9},
		{Name: "gauge_min", Metric: "g", Stat: StatMin, Window: time.Minute, Op: OpGT, Threshold: 1e9},
		{Name: "summary_p99", Metric: "s", Stat: StatP99, Window: time.Minute, Op: OpGT, Threshold: 1e9},
		{Name: "event_avg", Event: "ev", Field: "v", Stat: StatAvg, Window: time.Minute, Op: OpGT, Threshold: 1e9},
		{Name: "event_each", Event: "ev", Field: "v", Window: time.Minute, Op: OpGT, Threshold: 5},
	}
	p := newReplica(t, testConfig(rules...))
	e := p.start()
	start := pcommon.NewTimestampFromTime(p.clk.Now().Add(-time.Hour))
	bounds := []float64{100, 250, 500, 1000}
	e.consumeMetrics(histogramMetrics("h", cum, start, bounds, []uint64{10, 0, 0, 0, 0}, 500))
	e.consumeMetrics(histogramMetrics("h", cum, start, bounds, []uint64{10, 50, 30, 9, 1}, 30500))
	e.consumeMetrics(sumMetrics("c", cum, start, 10))
	e.consumeMetrics(sumMetrics("c", cum, start, 17))
	e.consumeMetrics(gaugeMetrics("g", nil, -3, 1, 8, 2.5))
	md := pmetric.NewMetrics()
	m := md.ResourceMetrics().AppendEmpty().ScopeMetrics().AppendEmpty().Metrics().AppendEmpty()
	m.SetName("s")
	dp := m.SetEmptySummary().DataPoints().AppendEmpty()
	dp.SetStartTimestamp(start)
	dp.SetCount(5)
	for q, v := range map[float64]float64{0.5: 10, 0.99: 42} {
		qv := dp.QuantileValues().AppendEmpty()
		qv.SetQuantile(q)
		qv.SetValue(v)
	}
	e.consumeMetrics(md)
	e.consumeLogs(eventLogs("ev", "v", nil, 1, 2, 9, math.Inf(1)))
	p.clk.Advance(time.Second)

	want := map[string]float64{}
	for _, r := range rules {
		v, ok := valueOf(t, e, r.Name, "")
		require.True(t, ok, r.Name)
		want[r.Name] = v
	}
	p.stop()
	p.start()
	for _, r := range rules {
		v, ok := valueOf(t, p.e, r.Name, "")
		require.True(t, ok, r.Name)
		if math.IsInf(want[r.Name], 0) {
			assert.Equal(t, want[r.Name], v, r.Name)
		} else {
			assert.InDelta(t, want[r.Name], v, 1e-9, r.Name)
		}
	}
	// The fast one-layout bucket path is restored as such, and keeps merging.
	// (Cumulative series are re-baselined after a restart, see the README; a
	// delta point adds at once.)
	p.e.consumeMetrics(histogramMetrics("h", pmetric.AggregationTemporalityDelta, 0, bounds, []uint64{0, 0, 0, 0, 100}, 100000))
	v, _ := valueOf(t, p.e, "hist_p90", "")
	assert.Equal(t, 1000.0, v, "100 more observations in +Inf move p90 to the highest finite bound")
}

func TestChangedRuleStateIsDiscardedAndItsFiringAlertResolved(t *testing.T) {
	p := newReplica(t, testConfig(lowAgreement, exportFailures))
	e := p.start()
	lowScore("bbox", 0.2)(e)
	e.consumeLogs(eventLogs("anvil.export.generate.exception", "", nil, 0, 0))
	require.Equal(t, []string{"firing"}, statuses(p.tick()))
	p.stop()

	// low_agreement's threshold changes; export_failures only its summary (kept).
	la, ef := lowAgreement, exportFailures
	la.Threshold = 0.3
	ef.Summary = "{{ .Value }} failed exports"
	p.cfg = testConfig(la, ef)
	p.start()
	require.Equal(t, []string{"resolved"}, statuses(p.resolved), "the old rule's firing alert is resolved, not left open")
	n := p.resolved[0]
	assert.Equal(t, "low_agreement", n.Rule)
	assert.Equal(t, "critical", n.Severity.String())
	assert.Equal(t, "Inter-rater agreement 0.2 below 0.4 on bbox", n.Summary)
	assert.Equal(t, map[string]string{"dimension": "bbox"}, n.Labels)
	assert.Equal(t, dedupKey("low_agreement", n.Labels), n.DedupKey)
	_, ok := valueOf(t, p.e, "low_agreement", "bbox")
	assert.False(t, ok, "the changed rule starts empty")
	v, _ := valueOf(t, p.e, "export_failures", "")
	assert.Equal(t, 2.0, v, "a summary change keeps the window")
	assert.Empty(t, p.tick())

	// Removed rule: resolved too, and its key deleted.
	p.stop()
	p.cfg = testConfig(ef)
	p.start()
	assert.Empty(t, p.resolved, "low_agreement (changed) was not firing any more")
	b, err := p.e.store.client.Get(context.Background(), stateRulePrefix+"low_agreement")
	require.NoError(t, err)
	assert.Nil(t, b, "the state of a removed rule is deleted")
}

func TestRemovedFiringRuleIsResolvedAtStart(t *testing.T) {
	p := newReplica(t, testConfig(lowAgreement, exportFailures))
	lowScore("label", 0.1)(p.start())
	require.Len(t, p.tick(), 1)
	p.kill()
	p.cfg = testConfig(exportFailures)
	p.start()
	require.Equal(t, []string{"resolved"}, statuses(p.resolved))
	assert.Equal(t, "low_agreement", p.resolved[0].Rule)
	assert.Equal(t, p.clk.Now(), p.resolved[0].EndsAt)
}

func TestStateFormatIsDocumentedJSON(t *testing.T) {
	p := newReplica(t, testConfig(lowAgreement))
	lowScore("bbox", 0.2)(p.start())
	p.tick()
	b, err := p.e.store.client.Get(context.Background(), "rule/low_agreement")
	require.NoError(t, err)
	var doc map[string]any
	require.NoError(t, json.Unmarshal(b, &doc))
	assert.Equal(t, 1.0, doc["version"])
	assert.Equal(t, "low_agreement", doc["rule"])
	assert.Len(t, doc["fingerprint"], 16)
	g := doc["groups"].([]any)[0].(map[string]any)
	assert.Equal(t, "firing", g["state"])
	assert.Equal(t, map[string]any{"dimension": "bbox"}, g["labels"])
	assert.Equal(t, 0.2, g["value"])
	assert.NotEmpty(t, g["last_notified"])
	slot := g["slots"].([]any)[0].(map[string]any)
	assert.Equal(t, 1.0, slot["viol"])

	idx, err := p.e.store.client.Get(context.Background(), "index")
	require.NoError(t, err)
	assert.JSONEq(t, `{"version":1,"rules":["low_agreement"]}`, string(idx))
}

func TestUnreadableStateIsDiscarded(t *testing.T) {
	p := newReplica(t, testConfig(exportFailures))
	p.start()
	require.NoError(t, p.e.store.client.Set(context.Background(), "rule/export_failures", []byte("{not json")))
	p.kill()
	p.start()
	assert.Empty(t, p.resolved)
	v, ok := valueOf(t, p.e, "export_failures", "")
	require.True(t, ok)
	assert.Equal(t, 0.0, v)
}

func TestUnchangedStateIsNotRewritten(t *testing.T) {
	p := newReplica(t, testConfig(exportFailures))
	p.start()
	p.tick()
	p.e.mu.Lock()
	ops := p.e.snapshot(p.e.store)
	p.e.mu.Unlock()
	assert.Empty(t, ops, "nothing changed since the last save")
	p.e.consumeLogs(eventLogs("anvil.export.generate.exception", "", nil, 0))
	p.e.mu.Lock()
	ops = p.e.snapshot(p.e.store)
	p.e.mu.Unlock()
	require.Len(t, ops, 1)
	assert.Equal(t, "rule/export_failures", ops[0].Key)
}

func TestPFloatRoundTripsNonFinite(t *testing.T) {
	for _, v := range []float64{0, -1.5, 1e300, math.Inf(1), math.Inf(-1)} {
		b, err := json.Marshal(pfloat(v))
		require.NoError(t, err)
		var got pfloat
		require.NoError(t, json.Unmarshal(b, &got))
		assert.Equal(t, v, float64(got), string(b))
	}
	b, _ := json.Marshal(pfloat(math.NaN()))
	var got pfloat
	require.NoError(t, json.Unmarshal(b, &got))
	assert.True(t, math.IsNaN(float64(got)))
}

func TestProcessorWithStorageSavesAtShutdownAndLoadsAtStart(t *testing.T) {
	dir := t.TempDir()
	cfg := testConfig(exportFailures)
	cfg.EvaluationInterval = time.Hour // no evaluation during the test: only shutdown saves
	id := fileStorageID
	cfg.Storage = &id
	require.NoError(t, cfg.Validate())
	f, set := NewFactory(), testSettings(t)

	run := func(events int, want float64) {
		host := startFileStorage(t, dir)
		p, err := f.CreateLogs(context.Background(), set, cfg, consumertest.NewNop())
		require.NoError(t, err)
		require.NoError(t, p.Start(context.Background(), host))
		if events > 0 {
			vals := make([]float64, events)
			require.NoError(t, p.ConsumeLogs(context.Background(), eventLogs("anvil.export.generate.exception", "", nil, vals...)))
		}
		h, err := acquire(set, cfg, wallClock{}) // the pipeline's engine
		require.NoError(t, err)
		e := h.engine()
		v, _ := valueOf(t, e, "export_failures", "")
		assert.Equal(t, want, v)
		require.NoError(t, p.Shutdown(context.Background()))
	}
	run(2, 2) // 2 failures, saved at shutdown
	run(1, 3) // loaded, plus one
}

func TestStartFailsWithoutTheStorageExtension(t *testing.T) {
	cfg := testConfig(exportFailures)
	id := component.MustNewIDWithName("file_storage", "missing")
	cfg.Storage = &id
	p := newTestLogs(t, cfg)
	err := p.Start(context.Background(), componenttest.NewNopHost())
	require.ErrorIs(t, err, ErrStorageNotFound)
	assert.Contains(t, err.Error(), "file_storage/missing")
	require.NoError(t, p.Shutdown(context.Background()))
}

// A slot's observations (`obs`, for min_count) are saved with it.
func TestMinCountObservationsSurviveARestart(t *testing.T) {
	r := exportFailures
	r.Threshold, r.MinCount = 1, 3
	p := newReplica(t, testConfig(r))
	e := p.start()
	e.consumeLogs(eventLogs("anvil.export.generate.exception", "", nil, 0, 0))
	assert.Empty(t, p.tick(), "2 of the 3 observations min_count needs")
	b, err := p.e.store.client.Get(context.Background(), "rule/export_failures")
	require.NoError(t, err)
	assert.Contains(t, string(b), `"obs":2`)
	p.kill()
	p.start().consumeLogs(eventLogs("anvil.export.generate.exception", "", nil, 0))
	assert.Equal(t, []string{"firing"}, statuses(p.tick()), "2 saved + 1 after the restart")
}

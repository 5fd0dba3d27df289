package samplingprocessor

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/open-telemetry/opentelemetry-collector-contrib/pkg/sampling"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"

	"github.com/anvil/anvilcol/internal/eventmatch"
)

var ctx = context.Background()

// adrRules are ADR-008's rates: label submits 10%, critical events 100%.
func adrRules() []RuleConfig {
	return []RuleConfig{
		{Name: "critical", Events: []string{"anvil.agreement.low_score", "anvil.auth.access_denied", "*.exception"}, Rate: ptr(1)},
		{Name: "label_submits", Events: []string{"anvil.label.submit.*", "anvil.label.submit"}, Rate: ptr(0.1)},
	}
}

func TestRateHoldsOverRandomTraceIDs(t *testing.T) {
	sink := new(consumertest.LogsSink)
	p := newLogs(t, adrConfig(adrRules()...), sink, nil)
	r := rand.New(rand.NewPCG(1, 2))
	const total, perBatch = 200_000, 10_000
	for b := 0; b < total/perBatch; b++ {
		ld, sl := newLogsData()
		for i := 0; i < perBatch; i++ {
			logRec(sl, "anvil.label.submit.stop", randomTraceID(r), nil)
		}
		require.NoError(t, p.ConsumeLogs(ctx, ld))
	}
	share := float64(sink.LogRecordCount()) / total
	assert.InDelta(t, 0.1, share, 0.005, "kept share at rate 0.1 over %d random trace ids", total)
}

func TestKeptLogsCarryThresholdAndAdjustedCount(t *testing.T) {
	sink := new(consumertest.LogsSink)
	p := newLogs(t, adrConfig(adrRules()...), sink, nil)
	r := rand.New(rand.NewPCG(3, 4))
	ld, sl := newLogsData()
	for i := 0; i < 2000; i++ {
		logRec(sl, "anvil.label.submit.stop", randomTraceID(r), map[string]any{"queue_id": "q1"})
	}
	require.NoError(t, p.ConsumeLogs(ctx, ld))
	kept := keptLogs(sink)
	require.NotEmpty(t, kept)
	want, err := sampling.ProbabilityToThreshold(0.1)
	require.NoError(t, err)
	for _, lr := range kept {
		th, ok := lr.Attributes().Get(AttrThreshold)
		require.True(t, ok)
		assert.Equal(t, want.TValue(), th.Str())
		assert.Equal(t, "e6666666666666", th.Str(), "0.1 at 14 hex digits")
		ac, ok := lr.Attributes().Get(AttrAdjustedCount)
		require.True(t, ok)
		assert.Equal(t, 10.0, ac.Double(), "adjusted count is 1/rate")
		_, capped := lr.Attributes().Get(AttrCapped)
		assert.False(t, capped)
		// The decision is the OpenTelemetry one: randomness >= threshold.
		assert.True(t, want.ShouldSample(sampling.TraceIDToRandomness(lr.TraceID())))
	}
}

func TestSamplingPrecisionRoundsTheThreshold(t *testing.T) {
	cfg := adrConfig(adrRules()...)
	cfg.SamplingPrecision = 4
	sink := new(consumertest.LogsSink)
	p := newLogs(t, cfg, sink, nil)
	ld, sl := newLogsData()
	logRec(sl, "anvil.label.submit.stop", traceIDWithRandomness(1<<56-1), nil)
	require.NoError(t, p.ConsumeLogs(ctx, ld))
	kept := keptLogs(sink)
	require.Len(t, kept, 1)
	th, _ := kept[0].Attributes().Get(AttrThreshold)
	assert.Equal(t, "e666", th.Str())
	ac, _ := kept[0].Attributes().Get(AttrAdjustedCount)
	assert.InDelta(t, 65536.0/6554, ac.Double(), 1e-9, "weight of the rounded threshold (p = 0x199a/0x10000)")
}

func TestFirstMatchingRuleWins(t *testing.T) {
	keepAll := RuleConfig{Name: "keep", Events: []string{"anvil.label.*"}, Rate: ptr(1)}
	dropAll := RuleConfig{Name: "drop", Events: []string{"anvil.label.submit.stop"}, Rate: ptr(0)}
	r := rand.New(rand.NewPCG(5, 6))
	for _, tt := range []struct {
		name  string
		rules []RuleConfig
		want  int
	}{
		{"keep first", []RuleConfig{keepAll, dropAll}, 100},
		{"drop first", []RuleConfig{dropAll, keepAll}, 0},
	} {
		t.Run(tt.name, func(t *testing.T) {
			sink := new(consumertest.LogsSink)
			p := newLogs(t, adrConfig(tt.rules...), sink, nil)
			ld, sl := newLogsData()
			for i := 0; i < 100; i++ {
				logRec(sl, "anvil.label.submit.stop", randomTraceID(r), nil)
			}
			require.NoError(t, p.ConsumeLogs(ctx, ld))
			assert.Equal(t, tt.want, sink.LogRecordCount())
		})
	}
}

func TestDefaultRateAppliesToUnmatchedEvents(t *testing.T) {
	cfg := adrConfig(adrRules()...)
	cfg.DefaultRate = 0
	sink := new(consumertest.LogsSink)
	p := newLogs(t, cfg, sink, nil)
	r := rand.New(rand.NewPCG(7, 8))
	ld, sl := newLogsData()
	for i := 0; i < 50; i++ {
		logRec(sl, "anvil.queue.created", randomTraceID(r), nil)
		logRec(sl, "anvil.agreement.low_score", randomTraceID(r), nil)
		logRec(sl, "", randomTraceID(r), nil) // no event name at all
	}
	require.NoError(t, p.ConsumeLogs(ctx, ld))
	assert.Equal(t, map[string]int{"anvil.agreement.low_score": 50}, countByName(keptLogs(sink)))

	// At default_rate 0.5 about half of the unmatched events pass, marked.
	cfg.DefaultRate = 0.5
	sink2 := new(consumertest.LogsSink)
	p2 := newLogs(t, cfg, sink2, nil)
	ld, sl = newLogsData()
	for i := 0; i < 4000; i++ {
		logRec(sl, "anvil.queue.created", randomTraceID(r), nil)
	}
	require.NoError(t, p2.ConsumeLogs(ctx, ld))
	assert.InDelta(t, 2000, sink2.LogRecordCount(), 200)
	th, ok := keptLogs(sink2)[0].Attributes().Get(AttrThreshold)
	require.True(t, ok)
	assert.Equal(t, "8", th.Str())
}

func TestAttributesMustAllMatchExactly(t *testing.T) {
	cfg := adrConfig(RuleConfig{
		Name: "noisy_queue", Events: []string{"anvil.assignment.*"},
		Attributes: map[string]string{"queue_id": "q-noisy", "tenant_id": "7", "requeued": "true"},
		Rate:       ptr(0),
	})
	sink := new(consumertest.LogsSink)
	p := newLogs(t, cfg, sink, nil)
	r := rand.New(rand.NewPCG(9, 10))
	tests := []struct {
		attrs   map[string]any
		dropped bool
	}{
		{map[string]any{"queue_id": "q-noisy", "tenant_id": "7", "requeued": "true"}, true},
		{map[string]any{"queue_id": "q-noisy", "tenant_id": int64(7), "requeued": true}, true}, // typed values compare by value
		{map[string]any{"queue_id": "q-noisy", "tenant_id": 7.0, "requeued": true, "x": 1}, true},
		{map[string]any{"queue_id": "q-noisy", "tenant_id": "7"}, false},                       // one missing
		{map[string]any{"queue_id": "q-noisy-2", "tenant_id": "7", "requeued": "true"}, false}, // not exact
		{map[string]any{"queue_id": "Q-NOISY", "tenant_id": "7", "requeued": "true"}, false},
		{map[string]any{"queue_id": "q-noisy", "tenant_id": int64(8), "requeued": true}, false},
	}
	for i, tt := range tests {
		ld, sl := newLogsData()
		logRec(sl, "anvil.assignment.timed_out", randomTraceID(r), tt.attrs)
		before := sink.LogRecordCount()
		require.NoError(t, p.ConsumeLogs(ctx, ld))
		assert.Equal(t, tt.dropped, sink.LogRecordCount() == before, "case %d %v", i, tt.attrs)
	}
}

func TestExceptionPatternMatchesEveryException(t *testing.T) {
	cfg := adrConfig(adrRules()...)
	cfg.DefaultRate = 0
	cfg.Rules[1].Rate = ptr(0)
	sink := new(consumertest.LogsSink)
	p := newLogs(t, cfg, sink, nil)
	r := rand.New(rand.NewPCG(11, 12))
	ld, sl := newLogsData()
	for _, n := range []string{"anvil.export.generate.exception", "anvil.label.submit.exception", "anvil.policy.select_assignment.exception"} {
		logRec(sl, n, randomTraceID(r), nil)
	}
	// The event name may arrive as an attribute (older SDKs, bridges).
	logRec(sl, "", randomTraceID(r), map[string]any{"event.name": "anvil.agreement.compute.exception"})
	logRec(sl, "anvil.label.submit.stop", randomTraceID(r), nil)
	logRec(sl, "anvil.export.generate.stop", randomTraceID(r), nil)
	logRec(sl, "anvil.exception.raised", randomTraceID(r), nil)
	require.NoError(t, p.ConsumeLogs(ctx, ld))
	kept := keptLogs(sink)
	assert.Len(t, kept, 4)
	for _, lr := range kept {
		name := lr.EventName()
		if name == "" {
			v, _ := lr.Attributes().Get("event.name")
			name = v.Str()
		}
		assert.Regexp(t, `\.exception$`, name)
	}
}

func TestAlwaysKeepLeavesRecordsUnmarked(t *testing.T) {
	sink := new(consumertest.LogsSink)
	p := newLogs(t, adrConfig(adrRules()...), sink, nil)
	r := rand.New(rand.NewPCG(13, 14))
	ld, sl := newLogsData()
	for i := 0; i < 500; i++ {
		logRec(sl, "anvil.agreement.low_score", randomTraceID(r), map[string]any{"sample_id": "s"})
		logRec(sl, "anvil.auth.access_denied", pcommon.NewTraceIDEmpty(), nil)
		logRec(sl, "anvil.queue.created", randomTraceID(r), nil) // default rate 1
	}
	require.NoError(t, p.ConsumeLogs(ctx, ld))
	kept := keptLogs(sink)
	require.Len(t, kept, 1500)
	for _, lr := range kept {
		for _, k := range []string{AttrThreshold, AttrAdjustedCount, AttrCapped, AttrRandomness} {
			_, ok := lr.Attributes().Get(k)
			assert.False(t, ok, "%s must not be set on %s", k, lr.EventName())
		}
	}
}

func TestTwoInstancesDecideIdentically(t *testing.T) {
	cfg := adrConfig(adrRules()...)
	cfg.HashAttribute = "assignment_id"
	a, b := new(consumertest.LogsSink), new(consumertest.LogsSink)
	pa, pb := newLogs(t, cfg, a, nil), newLogs(t, cfg, b, nil)
	r := rand.New(rand.NewPCG(15, 16))
	ld, sl := newLogsData()
	for i := 0; i < 5000; i++ {
		logRec(sl, "anvil.label.submit.stop", randomTraceID(r), map[string]any{"i": int64(i)})
		// without a trace id the hash attribute decides, alike everywhere
		logRec(sl, "anvil.label.submit.stop", pcommon.NewTraceIDEmpty(), map[string]any{"i": int64(-i), "assignment_id": fmt.Sprintf("a-%d", i)})
	}
	ld2 := plog.NewLogs()
	ld.CopyTo(ld2)
	require.NoError(t, pa.ConsumeLogs(ctx, ld))
	require.NoError(t, pb.ConsumeLogs(ctx, ld2))
	ids := func(s *consumertest.LogsSink) []int64 {
		var out []int64
		for _, lr := range keptLogs(s) {
			v, _ := lr.Attributes().Get("i")
			out = append(out, v.Int())
		}
		return out
	}
	require.NotEmpty(t, ids(a))
	assert.Equal(t, ids(a), ids(b))
	assert.InDelta(t, 1000, len(ids(a)), 150, "10%% of 10000")
}

func TestHashAttributeDecidesRecordsWithoutTraceID(t *testing.T) {
	cfg := adrConfig(adrRules()...)
	cfg.HashAttribute = "assignment_id"
	sink := new(consumertest.LogsSink)
	p := newLogs(t, cfg, sink, nil)
	// 20 records for each of 500 assignments: each assignment is kept or
	// dropped as a whole.
	ld, sl := newLogsData()
	for i := 0; i < 20; i++ {
		for a := 0; a < 500; a++ {
			logRec(sl, "anvil.label.submit.stop", pcommon.NewTraceIDEmpty(), map[string]any{"assignment_id": fmt.Sprintf("asg-%d", a)})
		}
	}
	require.NoError(t, p.ConsumeLogs(ctx, ld))
	per := map[string]int{}
	for _, lr := range keptLogs(sink) {
		v, _ := lr.Attributes().Get("assignment_id")
		per[v.Str()]++
	}
	require.NotEmpty(t, per)
	for a, n := range per {
		assert.Equal(t, 20, n, "assignment %s split", a)
	}
	assert.InDelta(t, 50, len(per), 25, "about 10%% of 500 assignments")
}

func TestRecordsWithoutTraceIDOrHashAttributeAreRandom(t *testing.T) {
	cfg := adrConfig(adrRules()...)
	cfg.HashAttribute = "assignment_id"
	sink := new(consumertest.LogsSink)
	p := newLogs(t, cfg, sink, nil)
	ld, sl := newLogsData()
	for i := 0; i < 20_000; i++ {
		logRec(sl, "anvil.label.submit.stop", pcommon.NewTraceIDEmpty(), nil)
	}
	require.NoError(t, p.ConsumeLogs(ctx, ld))
	assert.InDelta(t, 2000, sink.LogRecordCount(), 300)
}

func TestExistingLogThresholdKeepsTheStricter(t *testing.T) {
	sink := new(consumertest.LogsSink)
	p := newLogs(t, adrConfig(adrRules()...), sink, nil)
	ld, sl := newLogsData()
	top := traceIDWithRandomness(1<<56 - 1) // passes every threshold
	// Sampled before at 1% (stricter): its threshold and weight stand.
	logRec(sl, "anvil.label.submit.stop", top, map[string]any{"n": "strict", AttrThreshold: "fd70a3d70a3d71"})
	// Sampled before at 50% (looser): ours replaces it.
	logRec(sl, "anvil.label.submit.stop", top, map[string]any{"n": "loose", AttrThreshold: "8"})
	// A threshold the randomness contradicts is forgotten.
	logRec(sl, "anvil.label.submit.stop", traceIDWithRandomness(0xf0000000000000), map[string]any{"n": "lie", AttrThreshold: "ff"})
	// Explicit randomness overrides the trace id: 0 fails any threshold > 0.
	logRec(sl, "anvil.label.submit.stop", top, map[string]any{"n": "rv", AttrRandomness: "00000000000000"})
	require.NoError(t, p.ConsumeLogs(ctx, ld))
	got := map[string]plog.LogRecord{}
	for _, lr := range keptLogs(sink) {
		v, _ := lr.Attributes().Get("n")
		got[v.Str()] = lr
	}
	require.Len(t, got, 3, "the rv record must be dropped")
	th := func(n string) string { v, _ := got[n].Attributes().Get(AttrThreshold); return v.Str() }
	ac := func(n string) float64 { v, _ := got[n].Attributes().Get(AttrAdjustedCount); return v.Double() }
	assert.Equal(t, "fd70a3d70a3d71", th("strict"))
	assert.InDelta(t, 100, ac("strict"), 0.001)
	assert.Equal(t, "e6666666666666", th("loose"))
	assert.Equal(t, 10.0, ac("loose"))
	assert.Equal(t, "e6666666666666", th("lie"))
}

func TestManyDistinctNamesBeyondTheCache(t *testing.T) {
	cfg := adrConfig(RuleConfig{Name: "odd", Events: []string{"x.*.odd"}, Rate: ptr(0)})
	sink := new(consumertest.LogsSink)
	p := newLogs(t, cfg, sink, nil)
	ld, sl := newLogsData()
	n := eventmatch.MaxCachedKeys + 500
	for i := 0; i < n; i++ {
		suffix := "even"
		if i%2 == 1 {
			suffix = "odd"
		}
		logRec(sl, fmt.Sprintf("x.%d.%s", i, suffix), pcommon.NewTraceIDEmpty(), nil)
	}
	require.NoError(t, p.ConsumeLogs(ctx, ld))
	assert.Equal(t, n/2, sink.LogRecordCount())
	for _, lr := range keptLogs(sink) {
		assert.Regexp(t, `\.even$`, lr.EventName())
	}
}

func TestAllDroppedSkipsTheNextConsumer(t *testing.T) {
	cfg := adrConfig()
	cfg.DefaultRate = 0
	sink := new(consumertest.LogsSink)
	p := newLogs(t, cfg, sink, nil)
	ld, sl := newLogsData()
	logRec(sl, "anvil.queue.created", pcommon.NewTraceIDEmpty(), nil)
	require.NoError(t, p.ConsumeLogs(ctx, ld))
	assert.Empty(t, sink.AllLogs())
}

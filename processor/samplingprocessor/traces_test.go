package samplingprocessor

import (
	"math/rand/v2"
	"testing"

	"github.com/open-telemetry/opentelemetry-collector-contrib/pkg/sampling"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
)

func TestSpanRateHoldsOverRandomTraceIDs(t *testing.T) {
	sink := new(consumertest.TracesSink)
	p := newTraces(t, adrConfig(adrRules()...), sink, nil)
	r := rand.New(rand.NewPCG(21, 22))
	const total = 50_000
	td, ss := newTracesData()
	for i := 0; i < total; i++ {
		span(ss, "anvil.label.submit", randomTraceID(r), "")
	}
	require.NoError(t, p.ConsumeTraces(ctx, td))
	assert.InDelta(t, 0.1, float64(sink.SpanCount())/total, 0.01)
}

func TestSamplingKeepsWholeTraces(t *testing.T) {
	cfg := adrConfig(adrRules()...)
	// Two agents, each seeing some spans of every trace, in several batches.
	sinkA, sinkB := new(consumertest.TracesSink), new(consumertest.TracesSink)
	pa, pb := newTraces(t, cfg, sinkA, nil), newTraces(t, cfg, sinkB, nil)
	r := rand.New(rand.NewPCG(23, 24))
	tids := make([]pcommon.TraceID, 2000)
	for i := range tids {
		tids[i] = randomTraceID(r)
	}
	for batch := 0; batch < 3; batch++ {
		tdA, ssA := newTracesData()
		tdB, ssB := newTracesData()
		for _, tid := range tids {
			span(ssA, "anvil.label.submit", tid, "")
			span(ssB, "anvil.label.submit", tid, "")
		}
		require.NoError(t, pa.ConsumeTraces(ctx, tdA))
		require.NoError(t, pb.ConsumeTraces(ctx, tdB))
	}
	perTrace := map[pcommon.TraceID]int{}
	for _, sp := range append(keptSpans(sinkA), keptSpans(sinkB)...) {
		perTrace[sp.TraceID()]++
		assert.Equal(t, "ot=th:e6666666666666", sp.TraceState().AsRaw())
	}
	require.NotEmpty(t, perTrace)
	for tid, n := range perTrace {
		assert.Equal(t, 6, n, "trace %s split: %d of 6 spans kept", tid, n)
	}
	assert.InDelta(t, 200, len(perTrace), 50)
}

func TestLowerRateKeepsASubsetOfHigherRate(t *testing.T) {
	// Consistency across rules and agents: a trace kept at 10% is kept at 50%.
	cfg10 := adrConfig(adrRules()...)
	cfg50 := adrConfig(adrRules()...)
	cfg50.Rules[1].Rate = ptr(0.5)
	s10, s50 := new(consumertest.TracesSink), new(consumertest.TracesSink)
	p10, p50 := newTraces(t, cfg10, s10, nil), newTraces(t, cfg50, s50, nil)
	r := rand.New(rand.NewPCG(25, 26))
	td, ss := newTracesData()
	for i := 0; i < 5000; i++ {
		span(ss, "anvil.label.submit", randomTraceID(r), "")
	}
	td2 := ptrace.NewTraces()
	td.CopyTo(td2)
	require.NoError(t, p10.ConsumeTraces(ctx, td))
	require.NoError(t, p50.ConsumeTraces(ctx, td2))
	at50 := map[pcommon.TraceID]bool{}
	for _, sp := range keptSpans(s50) {
		at50[sp.TraceID()] = true
	}
	require.NotEmpty(t, keptSpans(s10))
	for _, sp := range keptSpans(s10) {
		assert.True(t, at50[sp.TraceID()], "kept at 10%% but not at 50%%")
	}
}

func TestTracestateKeepsTheStricterThreshold(t *testing.T) {
	top := traceIDWithRandomness(1<<56 - 1)
	tests := []struct {
		name, in, want string
		kept           bool
		tid            pcommon.TraceID
	}{
		{"none", "", "ot=th:e6666666666666", true, top},
		{"looser existing is raised", "ot=th:8", "ot=th:e6666666666666", true, top},
		{"stricter existing stands", "ot=th:fd70a3d70a3d71", "ot=th:fd70a3d70a3d71", true, top},
		{"other vendors survive", "ot=th:8;rv:ffffffffffffff,vendor=abc", "ot=rv:ffffffffffffff;th:e6666666666666,vendor=abc", true, top},
		{"explicit randomness wins over the trace id", "ot=rv:00000000000001", "", false, top},
		{"explicit randomness keeps", "ot=rv:ffffffffffffff", "ot=rv:ffffffffffffff;th:e6666666666666", true, traceIDWithRandomness(0)},
		{"inconsistent threshold is cleared", "ot=th:ff", "ot=th:e6666666666666", true, traceIDWithRandomness(0xf0000000000000)},
		{"malformed tracestate is left alone", "not a tracestate!", "not a tracestate!", true, top},
		{"dropped at rate", "", "", false, traceIDWithRandomness(0x10)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sink := new(consumertest.TracesSink)
			p := newTraces(t, adrConfig(adrRules()...), sink, nil)
			td, ss := newTracesData()
			span(ss, "anvil.label.submit", tt.tid, tt.in)
			require.NoError(t, p.ConsumeTraces(ctx, td))
			kept := keptSpans(sink)
			if !tt.kept {
				assert.Empty(t, kept)
				return
			}
			require.Len(t, kept, 1)
			assert.Equal(t, tt.want, kept[0].TraceState().AsRaw())
		})
	}
}

func TestAlwaysKeepLeavesSpansUnmarked(t *testing.T) {
	sink := new(consumertest.TracesSink)
	p := newTraces(t, adrConfig(adrRules()...), sink, nil)
	r := rand.New(rand.NewPCG(27, 28))
	td, ss := newTracesData()
	for i := 0; i < 200; i++ {
		span(ss, "anvil.agreement.compute", randomTraceID(r), "")       // default rate 1
		span(ss, "anvil.export.generate", randomTraceID(r), "vendor=x") // default rate 1
	}
	require.NoError(t, p.ConsumeTraces(ctx, td))
	kept := keptSpans(sink)
	require.Len(t, kept, 400)
	for _, sp := range kept {
		assert.NotContains(t, sp.TraceState().AsRaw(), "ot=")
		_, capped := sp.Attributes().Get(AttrCapped)
		assert.False(t, capped)
	}
}

func TestSpanDecisionMatchesTheOpenTelemetryThreshold(t *testing.T) {
	sink := new(consumertest.TracesSink)
	p := newTraces(t, adrConfig(adrRules()...), sink, nil)
	th, _ := sampling.ProbabilityToThreshold(0.1)
	r := rand.New(rand.NewPCG(29, 30))
	td, ss := newTracesData()
	want := 0
	for i := 0; i < 3000; i++ {
		tid := randomTraceID(r)
		span(ss, "anvil.label.submit", tid, "")
		if th.ShouldSample(sampling.TraceIDToRandomness(tid)) {
			want++
		}
	}
	require.NoError(t, p.ConsumeTraces(ctx, td))
	assert.Equal(t, want, sink.SpanCount())
}

// A span is matched by its name and by the event that ended it: a span with
// status Error by `<name>.exception`, so the ADR's `*.exception` rule keeps
// every failed label submit's span, while successful ones (`<name>.stop`)
// keep the label_submits rate.
func TestErrorSpansAreKeptByExceptionRules(t *testing.T) {
	sink := new(consumertest.TracesSink)
	p := newTraces(t, adrConfig(adrRules()...), sink, nil)
	r := rand.New(rand.NewPCG(25, 26))
	const total = 20_000
	td, ss := newTracesData()
	for i := 0; i < total; i++ {
		sp := span(ss, "anvil.label.submit", randomTraceID(r), "")
		if i%2 == 0 {
			sp.Status().SetCode(ptrace.StatusCodeError)
		}
	}
	require.NoError(t, p.ConsumeTraces(ctx, td))
	var errs, oks int
	for _, sp := range keptSpans(sink) {
		if sp.Status().Code() == ptrace.StatusCodeError {
			errs++
			assert.Empty(t, sp.TraceState().AsRaw(), "kept at rate 1: no threshold")
		} else {
			oks++
		}
	}
	assert.Equal(t, total/2, errs, "every error span is kept")
	assert.InDelta(t, 0.1, float64(oks)/(total/2), 0.015, "successful spans keep the label_submits rate")
}

func TestSpansMatchTheirStopEvent(t *testing.T) {
	cfg := adrConfig(RuleConfig{Name: "no_stops", Events: []string{"anvil.queue.*.stop"}, Rate: ptr(0)})
	sink := new(consumertest.TracesSink)
	p := newTraces(t, cfg, sink, nil)
	td, ss := newTracesData()
	r := rand.New(rand.NewPCG(27, 28))
	// Unset and Ok spans were ended by `.stop`: dropped; the Error one was
	// ended by `.exception`: the default rate keeps it.
	span(ss, "anvil.queue.create", randomTraceID(r), "")
	span(ss, "anvil.queue.create", randomTraceID(r), "").Status().SetCode(ptrace.StatusCodeOk)
	span(ss, "anvil.queue.create", randomTraceID(r), "").Status().SetCode(ptrace.StatusCodeError)
	require.NoError(t, p.ConsumeTraces(ctx, td))
	names := map[string]int{}
	for _, sp := range keptSpans(sink) {
		names[sp.Name()+"/"+sp.Status().Code().String()]++
	}
	assert.Equal(t, map[string]int{"anvil.queue.create/Error": 1}, names)
}

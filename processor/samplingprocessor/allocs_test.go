package samplingprocessor

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/processor/processortest"

	"github.com/anvil/anvilcol/processor/samplingprocessor/internal/metadata"
)

// TestDecidingAnItemDoesNotAllocate covers the per-item hot path (rule
// lookup, attribute conditions, randomness from trace id, hash attribute or
// random, the decision) for items it does not need to mark.
func TestDecidingAnItemDoesNotAllocate(t *testing.T) {
	if testing.CoverMode() != "" {
		t.Skip("coverage instrumentation allocates")
	}
	cfg := adrConfig(append(adrRules(),
		RuleConfig{Name: "noisy", Events: []string{"anvil.assignment.*"}, Attributes: map[string]string{"queue_id": "q-noisy", "tenant": "7"}, Rate: ptr(0.01)})...)
	cfg.HashAttribute = "assignment_id"
	set := processortest.NewNopSettings(metadata.Type)
	ls, err := newSampler(set, cfg, signalLogs)
	require.NoError(t, err)
	ts, err := newSampler(set, cfg, signalTraces)
	require.NoError(t, err)

	// Per-batch state is made once: only the per-item work is measured.
	lb, tb := ls.begin(), ts.begin()
	defer ls.end(ctx, lb)
	defer ts.end(ctx, tb)
	ld, sl := newLogsData()
	low := traceIDWithRandomness(0) // fails every threshold above 0
	recs := []func() bool{}
	for _, lr := range []struct {
		name  string
		tid   pcommon.TraceID
		attrs map[string]any
	}{
		{"anvil.label.submit.stop", low, map[string]any{"queue_id": "q1"}},
		{"anvil.label.submit.start", pcommon.NewTraceIDEmpty(), map[string]any{"assignment_id": droppedStr(ls)}},
		{"anvil.assignment.created", low, map[string]any{"queue_id": "q-noisy", "tenant": int64(7)}},
		{"anvil.agreement.low_score", low, nil},                             // rate 1, kept unmarked
		{"", low, map[string]any{"event.name": "anvil.auth.access_denied"}}, // name from attribute
		{"anvil.label.submit.stop", pcommon.NewTraceIDEmpty(), map[string]any{"assignment_id": droppedInt(ls)}},
		{"anvil.label.submit.stop", pcommon.NewTraceIDEmpty(), nil}, // random
	} {
		rec := logRec(sl, lr.name, lr.tid, lr.attrs)
		recs = append(recs, func() bool { return logsSampler{ls}.sampleLog(lb, rec) })
	}
	_ = ld
	td, ss := newTracesData()
	sp := span(ss, "anvil.label.submit", low, "")
	_ = td
	assert.False(t, tracesSampler{ts}.sampleSpan(tb, sp))

	for i, f := range recs {
		kept := f() // also warms the name cache
		if i != 6 { // record 6 is decided at random: kept 10% of the time
			assert.Equal(t, i == 3 || i == 4, kept, "record %d", i)
		}
		// Records that are kept at a rate below 1 get marked, which
		// allocates inside pdata; every record here is dropped or kept at 1.
		n := testing.AllocsPerRun(200, func() { f() })
		assert.Zero(t, n, "record %d allocates %v times per decision", i, n)
	}
	n := testing.AllocsPerRun(200, func() { tracesSampler{ts}.sampleSpan(tb, sp) })
	assert.Zero(t, n, "a dropped span allocates %v times", n)
}

// droppedInt and droppedStr find hash_attribute values the label_submits
// rule (10%) drops, so deciding them mutates nothing.
func droppedInt(s *sampler) int64 {
	th := s.rules.rules[1].threshold
	for i := int64(0); ; i++ {
		if h, _ := hashValue(pcommon.NewValueInt(i)); !th.ShouldSample(to56(h)) {
			return i
		}
	}
}

func droppedStr(s *sampler) string {
	th := s.rules.rules[1].threshold
	for i := 0; ; i++ {
		v := fmt.Sprintf("a-%d", i)
		if h, _ := hashValue(pcommon.NewValueStr(v)); !th.ShouldSample(to56(h)) {
			return v
		}
	}
}

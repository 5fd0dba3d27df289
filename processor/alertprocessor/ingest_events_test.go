package alertprocessor

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/ptrace"
)

// anvilEvent is one `...stop` or `...exception` event as the anvil receiver
// sends it: a log record named by the event, and a span named by its prefix
// (status Error for an exception), both with the same span id.
type anvilEvent struct {
	prefix string
	failed bool
	span   byte // the span id's last byte; 0 for none
}

func (ev anvilEvent) spanID() pcommon.SpanID {
	if ev.span == 0 {
		return pcommon.SpanID{}
	}
	return pcommon.SpanID{0, 0, 0, 0, 0, 0, 0, ev.span}
}

func anvilLogs(evs ...anvilEvent) plog.Logs {
	ld := plog.NewLogs()
	lrs := ld.ResourceLogs().AppendEmpty().ScopeLogs().AppendEmpty().LogRecords()
	for _, ev := range evs {
		lr := lrs.AppendEmpty()
		name := ev.prefix + ".stop"
		if ev.failed {
			name = ev.prefix + ".exception"
		}
		lr.SetEventName(name)
		lr.SetSpanID(ev.spanID())
	}
	return ld
}

func anvilSpans(evs ...anvilEvent) ptrace.Traces {
	td := ptrace.NewTraces()
	spans := td.ResourceSpans().AppendEmpty().ScopeSpans().AppendEmpty().Spans()
	for _, ev := range evs {
		s := spans.AppendEmpty()
		s.SetName(ev.prefix)
		s.SetSpanID(ev.spanID())
		if ev.failed {
			s.Status().SetCode(ptrace.StatusCodeError)
		}
	}
	return td
}

func exceptionRule() RuleConfig {
	return RuleConfig{Name: "exceptions", Event: "*.exception", Stat: StatCount, Window: time.Hour, Op: OpGE, Threshold: 2}
}

func TestExceptionRuleFiresFromExceptionSpansAlone(t *testing.T) {
	e, clk, _ := newTestEngine(t, testConfig(exceptionRule()))
	e.consumeTraces(anvilSpans(
		anvilEvent{"anvil.export.generate", true, 1},
		anvilEvent{"anvil.export.generate", false, 2}, // ended normally: .stop
		anvilEvent{"anvil.label.submit", true, 3},
	))
	ns := tick(e, clk)
	require.Len(t, ns, 1)
	assert.Equal(t, StatusFiring, ns[0].Status)
	assert.Equal(t, 2.0, ns[0].Value)
}

func TestExceptionRuleFiresFromExceptionLogsAlone(t *testing.T) {
	e, clk, _ := newTestEngine(t, testConfig(exceptionRule()))
	e.consumeLogs(anvilLogs(
		anvilEvent{"anvil.export.generate", true, 1},
		anvilEvent{"anvil.export.generate", false, 2},
		anvilEvent{"anvil.label.submit", true, 0}, // no trace context
	))
	ns := tick(e, clk)
	require.Len(t, ns, 1)
	assert.Equal(t, StatusFiring, ns[0].Status)
	assert.Equal(t, 2.0, ns[0].Value)
}

func TestEventInBothSignalsCountsOnce(t *testing.T) {
	e, clk, _ := newTestEngine(t, testConfig(
		RuleConfig{Name: "exceptions", Event: "*.exception", Stat: StatCount, Window: time.Hour, Op: OpGE, Threshold: 100},
		RuleConfig{Name: "generate", Event: "anvil.export.generate", Stat: StatCount, Window: time.Hour, Op: OpGE, Threshold: 100},
	))
	failed := anvilEvent{"anvil.export.generate", true, 1}
	e.consumeLogs(anvilLogs(failed))
	e.consumeTraces(anvilSpans(failed))
	// The span first, the log record a little later.
	other := anvilEvent{"anvil.export.generate", true, 2}
	e.consumeTraces(anvilSpans(other))
	clk.Advance(5 * time.Second)
	e.consumeLogs(anvilLogs(other))
	clk.Advance(time.Second)
	v, ok := valueOf(t, e, "exceptions", "")
	require.True(t, ok)
	assert.Equal(t, 2.0, v, "each failure once, whichever signal carried it first")
	v, _ = valueOf(t, e, "generate", "")
	assert.Equal(t, 2.0, v, "a rule that reads only the spans counts them")

	// Without a span id, records cannot be told apart from their spans.
	e.consumeLogs(anvilLogs(anvilEvent{"anvil.label.submit", true, 0}, anvilEvent{"anvil.label.submit", true, 0}))
	clk.Advance(time.Second)
	v, _ = valueOf(t, e, "exceptions", "")
	assert.Equal(t, 4.0, v)
}

func TestPointEventsOfOneSpanAllCount(t *testing.T) {
	e, clk, _ := newTestEngine(t, testConfig(
		RuleConfig{Name: "created", Event: "anvil.assignment.created", Stat: StatCount, Window: time.Hour, Op: OpGE, Threshold: 100},
	))
	ld := eventLogs("anvil.assignment.created", "", nil, 0, 0, 0)
	lrs := ld.ResourceLogs().At(0).ScopeLogs().At(0).LogRecords()
	for i := range lrs.Len() {
		lrs.At(i).SetSpanID(pcommon.SpanID{1}) // all emitted inside one span
	}
	e.consumeLogs(ld)
	clk.Advance(time.Second)
	v, _ := valueOf(t, e, "created", "")
	assert.Equal(t, 3.0, v)
}

func TestEventTwinIsForgottenAfterTwoEvaluationIntervals(t *testing.T) {
	e, clk, _ := newTestEngine(t, testConfig(
		RuleConfig{Name: "exceptions", Event: "*.exception", Stat: StatCount, Window: time.Hour, Op: OpGE, Threshold: 100},
	))
	ev := anvilEvent{"anvil.export.generate", true, 1}
	e.consumeLogs(anvilLogs(ev))
	clk.Advance(2 * e.cfg.EvaluationInterval)
	e.consumeTraces(anvilSpans(ev)) // swaps: the log is in the previous generation
	clk.Advance(2 * e.cfg.EvaluationInterval)
	e.consumeLogs(anvilLogs(ev)) // swaps again: forgotten, counted
	clk.Advance(time.Second)
	v, _ := valueOf(t, e, "exceptions", "")
	assert.Equal(t, 2.0, v)
}

package alertprocessor // import "github.com/anvil/anvilcol/processor/alertprocessor"

import (
	"strconv"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/anvil/anvilcol/internal/event"
)

// durationField is the span field read from the span's own timing (ns) when
// the span has no attribute of that name.
const durationField = "duration"

// consumeLogs feeds every log record whose event a rule matches; a rule
// skips the twin of an event it already counted from a span (rule_event.go).
func (e *engine) consumeLogs(ld plog.Logs) {
	if len(e.eventRules) == 0 {
		return
	}
	memo := e.eventIndex.Memo()
	in := batchLock{e: e}
	defer in.done()
	rls := ld.ResourceLogs()
	for i := 0; i < rls.Len(); i++ {
		rl := rls.At(i)
		sls := rl.ScopeLogs()
		for j := 0; j < sls.Len(); j++ {
			lrs := sls.At(j).LogRecords()
			for k := 0; k < lrs.Len(); k++ {
				lr := lrs.At(k)
				key := event.LogKey(lr)
				if key.Name == "" {
					continue
				}
				sel := memo.Select(key)
				if len(sel.Rules) == 0 {
					continue
				}
				now := in.lock()
				for _, i := range sel.Rules {
					r := e.eventRules[i]
					if r.seen.again(lr.SpanID(), sel, now) {
						continue
					}
					v, ok, present := logField(lr, r.cfg.Field)
					r.observe(v, ok, present, lr.Attributes(), rl.Resource().Attributes(), now)
				}
			}
		}
	}
}

// consumeTraces feeds every span whose name or event (`<name>.stop`, or
// `<name>.exception` for status Error) a rule matches; a rule skips the twin
// of an event it already counted from a log record (rule_event.go).
func (e *engine) consumeTraces(td ptrace.Traces) {
	if len(e.eventRules) == 0 {
		return
	}
	memo := e.eventIndex.Memo()
	in := batchLock{e: e}
	defer in.done()
	rss := td.ResourceSpans()
	for i := 0; i < rss.Len(); i++ {
		rs := rss.At(i)
		sss := rs.ScopeSpans()
		for j := 0; j < sss.Len(); j++ {
			spans := sss.At(j).Spans()
			for k := 0; k < spans.Len(); k++ {
				s := spans.At(k)
				key := event.SpanKey(s)
				if key.Name == "" {
					continue
				}
				sel := memo.Select(key)
				if len(sel.Rules) == 0 {
					continue
				}
				now := in.lock()
				for _, i := range sel.Rules {
					r := e.eventRules[i]
					if r.seen.again(s.SpanID(), sel, now) {
						continue
					}
					v, ok, present := spanField(s, r.cfg.Field)
					r.observe(v, ok, present, s.Attributes(), rs.Resource().Attributes(), now)
				}
			}
		}
	}
}

// logField reads a rule's field: a measurement of the body map, else an
// attribute. ok reports a number was read; present that the field exists.
func logField(lr plog.LogRecord, field string) (v float64, ok, present bool) {
	if field == "" {
		return 0, false, false
	}
	if body := lr.Body(); body.Type() == pcommon.ValueTypeMap {
		if val, found := body.Map().Get(field); found {
			v, ok = number(val)
			return v, ok, true
		}
	}
	if val, found := lr.Attributes().Get(field); found {
		v, ok = number(val)
		return v, ok, true
	}
	return 0, false, false
}

func spanField(s ptrace.Span, field string) (v float64, ok, present bool) {
	if field == "" {
		return 0, false, false
	}
	if val, found := s.Attributes().Get(field); found {
		v, ok = number(val)
		return v, ok, true
	}
	if field == durationField {
		return float64(s.EndTimestamp() - s.StartTimestamp()), true, true
	}
	return 0, false, false
}

func number(v pcommon.Value) (float64, bool) {
	switch v.Type() {
	case pcommon.ValueTypeInt:
		return float64(v.Int()), true
	case pcommon.ValueTypeDouble:
		return v.Double(), true
	case pcommon.ValueTypeBool:
		if v.Bool() {
			return 1, true
		}
		return 0, true
	case pcommon.ValueTypeStr:
		f, err := strconv.ParseFloat(v.Str(), 64)
		return f, err == nil
	}
	return 0, false
}

package alertprocessor // import "github.com/anvil/anvilcol/processor/alertprocessor"

import (
	"strconv"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/anvil/anvilcol/internal/event"
	"github.com/anvil/anvilcol/internal/eventmatch"
)

// durationField is the span field read from the span's own timing (ns) when
// the span has no attribute of that name.
const durationField = "duration"

// consumeLogs feeds every log record whose event a rule matches.
func (e *engine) consumeLogs(ld plog.Logs) {
	if len(e.eventRules) == 0 {
		return
	}
	in := e.eventIngest()
	defer in.done()
	rls := ld.ResourceLogs()
	for i := 0; i < rls.Len(); i++ {
		rl := rls.At(i)
		sls := rl.ScopeLogs()
		for j := 0; j < sls.Len(); j++ {
			lrs := sls.At(j).LogRecords()
			for k := 0; k < lrs.Len(); k++ {
				lr := lrs.At(k)
				sel := in.events(event.LogKey(lr))
				if len(sel.Rules) == 0 {
					continue
				}
				now := in.lock()
				for _, ri := range sel.Rules {
					r := in.all[ri]
					if e.seen.again(r, lr.SpanID(), sel, now) {
						continue
					}
					v, ok, present := logField(lr, r.cfg.Field)
					e.observeEvent(r, v, ok, present, lr.Attributes(), rl.Resource().Attributes(), now)
				}
			}
		}
	}
}

// consumeTraces feeds every span whose name or event (`<name>.stop`, or
// `<name>.exception` for status Error) a rule matches.
func (e *engine) consumeTraces(td ptrace.Traces) {
	if len(e.eventRules) == 0 {
		return
	}
	in := e.eventIngest()
	defer in.done()
	rss := td.ResourceSpans()
	for i := 0; i < rss.Len(); i++ {
		rs := rss.At(i)
		sss := rs.ScopeSpans()
		for j := 0; j < sss.Len(); j++ {
			spans := sss.At(j).Spans()
			for k := 0; k < spans.Len(); k++ {
				s := spans.At(k)
				sel := in.events(event.SpanKey(s))
				if len(sel.Rules) == 0 {
					continue
				}
				now := in.lock()
				for _, ri := range sel.Rules {
					r := in.all[ri]
					if e.seen.again(r, s.SpanID(), sel, now) {
						continue
					}
					v, ok, present := spanField(s, r.cfg.Field)
					e.observeEvent(r, v, ok, present, s.Attributes(), rs.Resource().Attributes(), now)
				}
			}
		}
	}
}

// maxSeen bounds the events eventSeen remembers per generation.
const maxSeen = 100_000

// eventSeen recognises an event a rule already counted: the anvil receiver
// sends each `...stop` and `...exception` event both as a log record and as a
// span with the same span id, and a rule that reads both signals counts the
// event once, from whichever arrives first. An event is its span id and name;
// only span-ending events are remembered (point and start events share their
// span's id with others of the same name), for one to two
// evaluation_intervals (two generations of keys, swapped every interval or
// when the current one holds maxSeen keys).
type eventSeen struct {
	cur, prev map[seenKey]struct{}
	every     time.Duration
	swapped   time.Time
}

type seenKey struct {
	r     *rule
	span  pcommon.SpanID
	event string // interned by the index
}

func newEventSeen(every time.Duration) eventSeen {
	return eventSeen{cur: map[seenKey]struct{}{}, prev: map[seenKey]struct{}{}, every: every}
}

// again reports whether rule r already counted the event sel of span id
// span, and remembers it if not. The caller holds the engine lock.
func (s *eventSeen) again(r *rule, span pcommon.SpanID, sel *eventmatch.Selection, now time.Time) bool {
	if span.IsEmpty() || (sel.Lifecycle != event.Stop && sel.Lifecycle != event.Exception) {
		return false
	}
	if now.Sub(s.swapped) >= s.every || now.Before(s.swapped) || len(s.cur) >= maxSeen {
		s.cur, s.prev = s.prev, s.cur
		clear(s.cur)
		s.swapped = now
	}
	k := seenKey{r: r, span: span, event: sel.Event}
	if _, ok := s.cur[k]; ok {
		return true
	}
	if _, ok := s.prev[k]; ok {
		return true
	}
	s.cur[k] = struct{}{}
	return false
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

// observeEvent adds one matching event to rule r.
func (e *engine) observeEvent(r *rule, v float64, ok, present bool, attrs, res pcommon.Map, now time.Time) {
	if r.cfg.Field != "" && !ok {
		reason := reasonFieldMissing
		if present {
			reason = reasonNotANumber
		}
		e.countDropped(r, reason)
		return
	}
	g := e.groupFor(r, attrs, res, now)
	if g == nil {
		return
	}
	a := g.win.at(now, r.slotWidth)
	switch {
	case r.stat == statEach:
		a.n++
		if r.op.eval(v, r.threshold) {
			a.viol++
			a.violLast = v
		}
		a.setLast(v, now)
	case r.cfg.Field == "":
		a.n++
		a.inc++
	default:
		a.addSample(v, r.q > 0)
		a.inc += v
		a.setLast(v, now)
	}
}

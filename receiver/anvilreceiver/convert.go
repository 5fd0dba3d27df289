package anvilreceiver // import "github.com/anvil/anvilcol/receiver/anvilreceiver"

import (
	"encoding/hex"
	"math/rand/v2"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/anvil/anvilcol/internal/event"
	"github.com/anvil/anvilcol/internal/timeunit"
)

// Metadata keys that carry trace context, and the exception attributes.
const (
	attrTraceparent    = "traceparent"
	attrTraceID        = "trace_id"
	attrSpanID         = "span_id"
	attrParentSpanID   = "parent_span_id"
	attrExcType        = "exception.type"
	attrExcMessage     = "exception.message"
	attrExcStacktrace  = "exception.stacktrace"
	measurementDur     = "duration"
	exceptionEventName = "exception"
)

// ids is the trace context of one event: for `...stop` / `...exception`
// events the span the event ends, for other events the enclosing span.
type ids struct {
	trace  pcommon.TraceID
	span   pcommon.SpanID
	parent pcommon.SpanID
	ok     bool
	// sampled is the W3C sampled flag of a traceparent that was used.
	sampled bool
	// used marks the trace-context metadata keys whose value went into the
	// ids (usedTraceparent, ...): they are lifted out of the attributes.
	used uint8
}

// The trace-context metadata keys, in the order of decodedEvent.traceVals;
// bit i of ids.used is traceKeyNames[i].
var traceKeyNames = [...]string{attrTraceparent, attrTraceID, attrSpanID, attrParentSpanID}

const (
	usedTraceparent uint8 = 1 << iota
	usedTraceID
	usedSpanID
	usedParentSpanID
)

func traceKeyIndex(key string) int {
	switch key {
	case attrTraceparent:
		return 0
	case attrTraceID:
		return 1
	case attrSpanID:
		return 2
	case attrParentSpanID:
		return 3
	}
	return -1
}

// restoreTraceKeys puts the trace-context values the record's id fields do
// not carry (malformed, or a traceparent overridden by explicit ids) back
// into the attributes. The others are lifted out: the OTel log and span data
// models carry them in TraceId / SpanId / ParentSpanId (and Flags), and the
// strings too would send every id twice.
func restoreTraceKeys(ev *decodedEvent, used uint8) {
	for k, v := range ev.traceVals {
		if v != nil && used&(1<<k) == 0 {
			ev.attrs.PutStr(traceKeyNames[k], string(v))
		}
	}
}

// traceContext reads an event's trace context from its metadata: explicit
// trace_id / span_id / parent_span_id (hex) win over a W3C traceparent, whose
// parent-id is the span enclosing the event. Malformed ids count as absent.
// A span event without trace context starts a new trace.
func traceContext(ev *decodedEvent, lc event.Lifecycle) ids {
	var out ids
	if !ev.traceKeys {
		if lc == event.Stop || lc == event.Exception {
			return ids{trace: newTraceID(), span: newSpanID(), ok: true}
		}
		return out
	}
	var tpParent pcommon.SpanID
	if v := ev.traceVals[0]; v != nil {
		if t, p, sampled, ok := parseTraceparent(v); ok {
			out.trace, tpParent, out.ok, out.sampled = t, p, true, sampled
			out.used = usedTraceparent
		}
	}
	if v := ev.traceVals[1]; v != nil {
		var t pcommon.TraceID
		if decodeHexID(v, t[:]) && !t.IsEmpty() {
			// explicit ids win: a traceparent beside them is not used
			out.trace, out.ok, tpParent, out.sampled = t, true, pcommon.SpanID{}, false
			out.used = usedTraceID
		}
	}
	var explicitSpan pcommon.SpanID
	if out.ok {
		// hex.Decode writes what it decoded before an error: a malformed id
		// is cleared, not half used.
		if v := ev.traceVals[2]; v != nil {
			if decodeHexID(v, explicitSpan[:]) && !explicitSpan.IsEmpty() {
				out.used |= usedSpanID
			} else {
				explicitSpan = pcommon.SpanID{}
			}
		}
		if v := ev.traceVals[3]; v != nil {
			if decodeHexID(v, out.parent[:]) && !out.parent.IsEmpty() {
				out.used |= usedParentSpanID
			} else {
				out.parent = pcommon.SpanID{}
			}
		}
	}
	switch lc {
	case event.Stop, event.Exception:
		if !out.ok {
			out.trace, out.ok = newTraceID(), true
		}
		out.span = explicitSpan
		if out.span.IsEmpty() {
			out.span = newSpanID()
		}
		if out.parent.IsEmpty() {
			out.parent = tpParent
		}
	default:
		out.span = explicitSpan
		if out.span.IsEmpty() {
			out.span = tpParent
		}
		if !out.parent.IsEmpty() {
			// a point event has no span of its own: its parent_span_id
			// is not carried by the log record, so the key stays
			out.used &^= usedParentSpanID
		}
		out.parent = pcommon.SpanID{}
	}
	return out
}

// parseTraceparent reads "00-<32 hex trace-id>-<16 hex parent-id>-<2 hex
// flags>" and returns the ids and the sampled flag.
func parseTraceparent(s []byte) (pcommon.TraceID, pcommon.SpanID, bool, bool) {
	var t pcommon.TraceID
	var p pcommon.SpanID
	var flags [1]byte
	if len(s) < 55 || s[2] != '-' || s[35] != '-' || s[52] != '-' || string(s[:2]) == "ff" {
		return t, p, false, false
	}
	if !decodeHexID(s[3:35], t[:]) || !decodeHexID(s[36:52], p[:]) || !decodeHexID(s[53:55], flags[:]) || t.IsEmpty() || p.IsEmpty() {
		return t, p, false, false
	}
	return t, p, flags[0]&1 != 0, true
}

func decodeHexID(s []byte, dst []byte) bool {
	if len(s) != 2*len(dst) {
		return false
	}
	_, err := hex.Decode(dst, s)
	return err == nil
}

func newTraceID() pcommon.TraceID {
	var t pcommon.TraceID
	for t.IsEmpty() {
		putUint64(t[:8], rand.Uint64())
		putUint64(t[8:], rand.Uint64())
	}
	return t
}

func newSpanID() pcommon.SpanID {
	var s pcommon.SpanID
	for s.IsEmpty() {
		putUint64(s[:], rand.Uint64())
	}
	return s
}

func putUint64(b []byte, v uint64) {
	for i := range 8 {
		b[i] = byte(v >> (56 - 8*i))
	}
}

// exception returns the exception attributes of an `...exception` event:
// exception.* metadata when present, else :telemetry.span/3's kind, reason
// and stacktrace.
func exception(attrs pcommon.Map) (typ, msg, stack string) {
	get := func(primary, fallback string) string {
		if v, ok := attrs.Get(primary); ok {
			return v.AsString()
		}
		if v, ok := attrs.Get(fallback); ok {
			return v.AsString()
		}
		return ""
	}
	return get(attrExcType, "kind"), get(attrExcMessage, "reason"), get(attrExcStacktrace, "stacktrace")
}

// eventTime returns the event's time, or the receive time when it has none.
func eventTime(ev *decodedEvent, now pcommon.Timestamp) pcommon.Timestamp {
	if ev.timeUnixNano > 0 {
		return pcommon.Timestamp(ev.timeUnixNano)
	}
	return now
}

// durationNanos returns the event's `duration` measurement in nanoseconds.
func durationNanos(ev *decodedEvent, native timeunit.Unit) (uint64, bool) {
	for i := range ev.measurements {
		if ev.measurements[i].key == measurementDur {
			from := ev.unit
			if from == timeunit.Native {
				from = native
			}
			d := timeunit.Convert(ev.measurements[i].value, from, timeunit.Nanosecond)
			if d < 0 {
				return 0, true
			}
			return uint64(d + 0.5), true
		}
	}
	return 0, false
}

// buildTraces turns the `...stop` and `...exception` events into spans.
func buildTraces(b *batch, tc []ids, resource pcommon.Map, scope func(pcommon.InstrumentationScope), native timeunit.Unit, now pcommon.Timestamp) ptrace.Traces {
	td := ptrace.NewTraces()
	rs := td.ResourceSpans().AppendEmpty()
	resource.CopyTo(rs.Resource().Attributes())
	ss := rs.ScopeSpans().AppendEmpty()
	scope(ss.Scope())
	spans := ss.Spans()
	n := 0
	for i := range b.events {
		if lc := b.events[i].lc; lc == event.Stop || lc == event.Exception {
			n++
		}
	}
	spans.EnsureCapacity(n)
	for i := range b.events {
		ev := &b.events[i]
		prefix, lc := ev.prefix, ev.lc
		if lc != event.Stop && lc != event.Exception {
			continue
		}
		sp := spans.AppendEmpty()
		sp.SetName(prefix)
		sp.SetKind(ptrace.SpanKindInternal)
		sp.SetTraceID(tc[i].trace)
		sp.SetSpanID(tc[i].span)
		sp.SetParentSpanID(tc[i].parent)
		if tc[i].sampled {
			sp.SetFlags(1) // W3C trace flags: sampled
		}
		end := eventTime(ev, now)
		start := end
		if d, ok := durationNanos(ev, native); ok && d <= uint64(end) {
			start = end - pcommon.Timestamp(d)
		}
		sp.SetStartTimestamp(start)
		sp.SetEndTimestamp(end)
		ev.attrs.CopyTo(sp.Attributes())
		if lc == event.Exception {
			typ, msg, stack := exception(ev.attrs)
			sp.Status().SetCode(ptrace.StatusCodeError)
			sp.Status().SetMessage(msg)
			se := sp.Events().AppendEmpty()
			se.SetName(exceptionEventName)
			se.SetTimestamp(end)
			se.Attributes().PutStr(attrExcType, typ)
			se.Attributes().PutStr(attrExcMessage, msg)
			if stack != "" {
				se.Attributes().PutStr(attrExcStacktrace, stack)
			}
		}
	}
	return td
}

// buildLogs completes the events' log records (decoded into the batch's
// logs, attributes already set) into OpenTelemetry event log records and
// returns the logs; the batch must not be used afterwards.
func buildLogs(b *batch, tc []ids, resource pcommon.Map, scope func(pcommon.InstrumentationScope), now pcommon.Timestamp) plog.Logs {
	ld := b.logs
	rl := ld.ResourceLogs().At(0)
	resource.CopyTo(rl.Resource().Attributes())
	scope(rl.ScopeLogs().At(0).Scope())
	for i := range b.events {
		ev := &b.events[i]
		lr := ev.record
		lr.SetEventName(ev.name)
		lr.SetTimestamp(eventTime(ev, now))
		lr.SetObservedTimestamp(now)
		body := lr.Body().SetEmptyMap()
		body.EnsureCapacity(len(ev.measurements))
		for _, m := range ev.measurements {
			if m.isInt {
				body.PutInt(m.key, m.ival)
			} else {
				body.PutDouble(m.key, m.value)
			}
		}
		if tc[i].ok {
			lr.SetTraceID(tc[i].trace)
			lr.SetSpanID(tc[i].span)
			if tc[i].sampled {
				lr.SetFlags(plog.DefaultLogRecordFlags.WithIsSampled(true))
			}
		}
		if ev.lc == event.Exception {
			lr.SetSeverityNumber(plog.SeverityNumberError)
			lr.SetSeverityText("ERROR")
			typ, msg, stack := exception(ev.attrs)
			ev.attrs.EnsureCapacity(ev.attrs.Len() + 3)
			putIfAbsent(ev.attrs, attrExcType, typ)
			putIfAbsent(ev.attrs, attrExcMessage, msg)
			if stack != "" {
				putIfAbsent(ev.attrs, attrExcStacktrace, stack)
			}
		} else {
			lr.SetSeverityNumber(plog.SeverityNumberInfo)
			lr.SetSeverityText("INFO")
		}
	}
	return ld
}

func putIfAbsent(m pcommon.Map, k, v string) {
	if _, ok := m.Get(k); !ok {
		m.PutStr(k, v)
	}
}

package aitraceexporter // import "github.com/anvil/anvilcol/exporter/aitraceexporter"

import (
	"encoding/base64"
	"encoding/json"
	"math"
	"strconv"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
)

// tracesBody is the body of POST /v1/traces.
type tracesBody struct {
	Traces []traceJSON `json:"traces"`
}

type traceJSON struct {
	TraceID string     `json:"trace_id"`
	Spans   []spanJSON `json:"spans"`
}

type spanJSON struct {
	SpanID        string         `json:"span_id"`
	ParentSpanID  string         `json:"parent_span_id,omitempty"`
	Name          string         `json:"name"`
	StartTime     string         `json:"start_time"`
	EndTime       string         `json:"end_time"`
	Attributes    map[string]any `json:"attributes"`
	Events        []eventJSON    `json:"events"`
	Status        string         `json:"status"`
	StatusMessage string         `json:"status_message,omitempty"`
}

type eventJSON struct {
	Name       string         `json:"name"`
	Timestamp  string         `json:"timestamp"`
	Attributes map[string]any `json:"attributes"`
}

// spanSet is the spans of one ptrace.Traces ordered so that spans of one
// trace are adjacent (traces in order of first appearance, spans in input
// order within a trace); a request carries a contiguous range of it.
type spanSet struct {
	spans []ptrace.Span
	// ords[i] is the walk-order ordinal of spans[i] in the input, so a retry
	// can resend exactly the spans not yet delivered.
	ords []int
}

func newSpanSet(td ptrace.Traces) *spanSet {
	n := td.SpanCount()
	type ref struct {
		span ptrace.Span
		ord  int
	}
	groups := make(map[pcommon.TraceID][]ref)
	var order []pcommon.TraceID
	ord := 0
	rss := td.ResourceSpans()
	for i := 0; i < rss.Len(); i++ {
		sss := rss.At(i).ScopeSpans()
		for j := 0; j < sss.Len(); j++ {
			spans := sss.At(j).Spans()
			for k := 0; k < spans.Len(); k++ {
				s := spans.At(k)
				id := s.TraceID()
				if _, seen := groups[id]; !seen {
					order = append(order, id)
				}
				groups[id] = append(groups[id], ref{s, ord})
				ord++
			}
		}
	}
	set := &spanSet{spans: make([]ptrace.Span, 0, n), ords: make([]int, 0, n)}
	for _, id := range order {
		for _, r := range groups[id] {
			set.spans = append(set.spans, r.span)
			set.ords = append(set.ords, r.ord)
		}
	}
	return set
}

// body encodes spans [lo, hi), grouped by trace id.
func (s *spanSet) body(lo, hi int) ([]byte, error) {
	out := tracesBody{Traces: []traceJSON{}}
	for i := lo; i < hi; i++ {
		sp := s.spans[i]
		id := sp.TraceID().String()
		if len(out.Traces) == 0 || out.Traces[len(out.Traces)-1].TraceID != id {
			out.Traces = append(out.Traces, traceJSON{TraceID: id})
		}
		t := &out.Traces[len(out.Traces)-1]
		t.Spans = append(t.Spans, toSpanJSON(sp))
	}
	return json.Marshal(out)
}

func toSpanJSON(sp ptrace.Span) spanJSON {
	j := spanJSON{
		SpanID:     sp.SpanID().String(),
		Name:       sp.Name(),
		StartTime:  formatTime(sp.StartTimestamp()),
		EndTime:    formatTime(sp.EndTimestamp()),
		Attributes: mapToJSON(sp.Attributes()),
		Events:     make([]eventJSON, 0, sp.Events().Len()),
		Status:     "ok",
	}
	if p := sp.ParentSpanID(); !p.IsEmpty() {
		j.ParentSpanID = p.String()
	}
	// AITrace knows ok and error; OpenTelemetry's Unset means "not an error".
	if sp.Status().Code() == ptrace.StatusCodeError {
		j.Status = "error"
	}
	j.StatusMessage = sp.Status().Message()
	evs := sp.Events()
	for i := 0; i < evs.Len(); i++ {
		ev := evs.At(i)
		j.Events = append(j.Events, eventJSON{
			Name:       ev.Name(),
			Timestamp:  formatTime(ev.Timestamp()),
			Attributes: mapToJSON(ev.Attributes()),
		})
	}
	return j
}

func mapToJSON(m pcommon.Map) map[string]any {
	out := make(map[string]any, m.Len())
	m.Range(func(k string, v pcommon.Value) bool {
		out[k] = valueToJSON(v)
		return true
	})
	return out
}

// valueToJSON converts an attribute value to its natural JSON form. JSON has
// no NaN or infinity: such doubles become the strings "NaN", "+Inf", "-Inf".
func valueToJSON(v pcommon.Value) any {
	switch v.Type() {
	case pcommon.ValueTypeStr:
		return v.Str()
	case pcommon.ValueTypeInt:
		return v.Int()
	case pcommon.ValueTypeDouble:
		f := v.Double()
		if math.IsNaN(f) || math.IsInf(f, 0) {
			return strconv.FormatFloat(f, 'g', -1, 64)
		}
		return f
	case pcommon.ValueTypeBool:
		return v.Bool()
	case pcommon.ValueTypeMap:
		return mapToJSON(v.Map())
	case pcommon.ValueTypeSlice:
		s := v.Slice()
		out := make([]any, s.Len())
		for i := 0; i < s.Len(); i++ {
			out[i] = valueToJSON(s.At(i))
		}
		return out
	case pcommon.ValueTypeBytes:
		return base64.StdEncoding.EncodeToString(v.Bytes().AsRaw())
	}
	return nil
}

// spansFrom returns a copy of td holding only the spans whose walk-order
// ordinal is in keep.
func spansFrom(td ptrace.Traces, keep map[int]bool) ptrace.Traces {
	out := ptrace.NewTraces()
	td.CopyTo(out)
	ord := 0
	out.ResourceSpans().RemoveIf(func(rs ptrace.ResourceSpans) bool {
		rs.ScopeSpans().RemoveIf(func(ss ptrace.ScopeSpans) bool {
			ss.Spans().RemoveIf(func(ptrace.Span) bool {
				k := keep[ord]
				ord++
				return !k
			})
			return ss.Spans().Len() == 0
		})
		return rs.ScopeSpans().Len() == 0
	})
	return out
}

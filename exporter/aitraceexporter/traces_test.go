package aitraceexporter

import (
	"context"
	"encoding/json"
	"math"
	"net/http"
	"reflect"
	"testing"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
)

func tid(b byte) pcommon.TraceID {
	return pcommon.TraceID{b, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15}
}
func sid(b byte) pcommon.SpanID { return pcommon.SpanID{b, 1, 2, 3, 4, 5, 6, 7} }

// interleaved returns spans of traces A and B in the order A1 B1 A2 B2 ...,
// split over two resources.
func interleaved(n int) ptrace.Traces {
	td := ptrace.NewTraces()
	for r := 0; r < 2; r++ {
		spans := td.ResourceSpans().AppendEmpty().ScopeSpans().AppendEmpty().Spans()
		for i := 0; i < n; i++ {
			for _, tr := range []byte{0xa, 0xb} {
				s := spans.AppendEmpty()
				s.SetTraceID(tid(tr))
				s.SetSpanID(sid(byte(r*100 + i)))
				s.SetName("anvil.label.submit")
				s.SetStartTimestamp(eventTime)
				s.SetEndTimestamp(eventTime + 1)
			}
		}
	}
	return td
}

func TestSpanCarriesEveryDocumentedField(t *testing.T) {
	f := newFakeAITrace(t)
	exp := startExporter(t, testConfig(f.URL), nil)
	td := ptrace.NewTraces()
	spans := td.ResourceSpans().AppendEmpty().ScopeSpans().AppendEmpty().Spans()
	root := spans.AppendEmpty()
	root.SetTraceID(traceID)
	root.SetSpanID(spanID)
	root.SetName("anvil.export.generate")
	root.SetStartTimestamp(eventTime)
	root.SetEndTimestamp(eventTime + 5_000_000_001)
	child := spans.AppendEmpty()
	child.SetTraceID(traceID)
	child.SetSpanID(sid(9))
	child.SetParentSpanID(spanID)
	child.SetName("anvil.agreement.compute")
	child.SetStartTimestamp(eventTime + 1000)
	child.SetEndTimestamp(eventTime + 2000)
	a := child.Attributes()
	a.PutStr("queue_id", "q-7")
	a.PutInt("rows", 12)
	a.PutDouble("score", 0.5)
	a.PutDouble("nan", math.NaN())
	a.PutBool("requeued", false)
	a.PutEmptySlice("dims").AppendEmpty().SetStr("x")
	a.PutEmptyMap("m").PutInt("k", 1)
	child.Status().SetCode(ptrace.StatusCodeError)
	child.Status().SetMessage("timeout")
	ev := child.Events().AppendEmpty()
	ev.SetName("exception")
	ev.SetTimestamp(eventTime + 1500)
	ev.Attributes().PutStr("exception.type", "RuntimeError")

	if err := exp.traces.ConsumeTraces(context.Background(), td); err != nil {
		t.Fatal(err)
	}
	reqs := f.requests("/v1/traces")
	if len(reqs) != 1 {
		t.Fatalf("%d requests", len(reqs))
	}
	want := map[string]any{"traces": []any{map[string]any{
		"trace_id": "4bf92f3577b34da6a3ce929d0e0e4736",
		"spans": []any{
			map[string]any{
				"span_id": "00f067aa0ba902b7", "name": "anvil.export.generate",
				"start_time": "2023-11-14T22:13:20.123456789Z", "end_time": "2023-11-14T22:13:25.123456790Z",
				"attributes": map[string]any{}, "events": []any{}, "status": "ok",
			},
			map[string]any{
				"span_id": "0901020304050607", "parent_span_id": "00f067aa0ba902b7", "name": "anvil.agreement.compute",
				"start_time": "2023-11-14T22:13:20.123457789Z", "end_time": "2023-11-14T22:13:20.123458789Z",
				"attributes": map[string]any{"queue_id": "q-7", "rows": 12.0, "score": 0.5, "nan": "NaN", "requeued": false,
					"dims": []any{"x"}, "m": map[string]any{"k": 1.0}},
				"events": []any{map[string]any{"name": "exception", "timestamp": "2023-11-14T22:13:20.123458289Z",
					"attributes": map[string]any{"exception.type": "RuntimeError"}}},
				"status": "error", "status_message": "timeout",
			},
		},
	}}}
	if !reflect.DeepEqual(reqs[0].body, want) {
		g, _ := json.MarshalIndent(reqs[0].body, "", " ")
		t.Errorf("traces body:\n%s", g)
	}
	if n := exp.tel.Counter(t, "otelcol_aitrace_spans_sent"); n != 2 {
		t.Errorf("spans_sent = %d", n)
	}
}

// spansByTrace returns trace id -> span ids in the order received.
func spansByTrace(reqs []request) (order []string, spans map[string][]string) {
	spans = map[string][]string{}
	for _, r := range reqs {
		for _, tr := range r.body["traces"].([]any) {
			tm := tr.(map[string]any)
			id := tm["trace_id"].(string)
			if _, ok := spans[id]; !ok {
				order = append(order, id)
			}
			for _, s := range tm["spans"].([]any) {
				spans[id] = append(spans[id], s.(map[string]any)["span_id"].(string))
			}
		}
	}
	return order, spans
}

func TestSpansAreGroupedByTraceID(t *testing.T) {
	f := newFakeAITrace(t)
	exp := startExporter(t, testConfig(f.URL), nil)
	if err := exp.traces.ConsumeTraces(context.Background(), interleaved(3)); err != nil {
		t.Fatal(err)
	}
	reqs := f.requests("/v1/traces")
	if len(reqs) != 1 || len(reqs[0].body["traces"].([]any)) != 2 {
		t.Fatalf("want one request with two trace groups, got %+v", reqs)
	}
	order, spans := spansByTrace(reqs)
	if order[0] != tid(0xa).String() || len(spans[tid(0xa).String()]) != 6 || len(spans[tid(0xb).String()]) != 6 {
		t.Errorf("groups %v", spans)
	}
}

func TestMaxBatchSpansAndTooLargeSplit(t *testing.T) {
	f := newFakeAITrace(t)
	f.answer(func(r request) (int, http.Header, string) {
		n := 0
		for _, tr := range r.body["traces"].([]any) {
			n += len(tr.(map[string]any)["spans"].([]any))
		}
		if n > 2 {
			return http.StatusRequestEntityTooLarge, nil, "too big"
		}
		return http.StatusOK, nil, "{}"
	})
	cfg := testConfig(f.URL)
	cfg.MaxBatchSpans = 4
	exp := startExporter(t, cfg, nil)
	if err := exp.traces.ConsumeTraces(context.Background(), interleaved(3)); err != nil { // 12 spans
		t.Fatal(err)
	}
	var accepted []request
	for _, r := range f.requests("/v1/traces") {
		n := 0
		for _, tr := range r.body["traces"].([]any) {
			n += len(tr.(map[string]any)["spans"].([]any))
		}
		if n > 4 {
			t.Errorf("a request carried %d spans > max_batch_spans 4", n)
		}
		if n <= 2 {
			accepted = append(accepted, r)
		}
	}
	_, spans := spansByTrace(accepted)
	seen := map[string]bool{}
	for tr, ids := range spans {
		for _, id := range ids {
			if seen[tr+"/"+id] {
				t.Errorf("span %s/%s delivered twice", tr, id)
			}
			seen[tr+"/"+id] = true
		}
	}
	if len(spans[tid(0xa).String()]) != 6 || len(spans[tid(0xb).String()]) != 6 {
		t.Errorf("delivered %v", spans)
	}
	if n := exp.tel.Counter(t, "otelcol_aitrace_requests", "api", "traces", "outcome", "too_large"); n != 3 {
		t.Errorf("requests{traces,too_large} = %d, want 3", n)
	}
}

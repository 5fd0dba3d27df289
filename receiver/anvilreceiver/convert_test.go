package anvilreceiver

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/ptrace"
)

const (
	traceA = "4bf92f3577b34da6a3ce929d0e0e4736"
	spanP  = "b7ad6b7169203331"
	spanC  = "53995c3f42cd8ad8"
)

func mustTime(t *testing.T, s string) pcommon.Timestamp {
	t.Helper()
	tm, err := time.Parse(time.RFC3339Nano, s)
	require.NoError(t, err)
	return pcommon.NewTimestampFromTime(tm)
}

func onlyLogs(t *testing.T, tr *testReceiver) plog.LogRecordSlice {
	t.Helper()
	all := tr.logs.AllLogs()
	require.Len(t, all, 1)
	return all[0].ResourceLogs().At(0).ScopeLogs().At(0).LogRecords()
}

func onlySpans(t *testing.T, tr *testReceiver) ptrace.SpanSlice {
	t.Helper()
	all := tr.traces.AllTraces()
	require.Len(t, all, 1)
	return all[0].ResourceSpans().At(0).ScopeSpans().At(0).Spans()
}

func TestEventBecomesEventLogRecord(t *testing.T) {
	tr := startTestReceiver(t, nil)
	a := postJSON(t, tr.url, `[{"name": ["anvil","export","progress"], "time": "2026-05-01T12:00:01.5Z",
		"measurements": {"rows_processed": 5000, "ratio": 0.5},
		"metadata": {"export_id": "e-1", "progress_pct": 50, "total_rows": 10000.0, "ok": true, "none": null,
		             "tags": ["a", {"b": 1}], "nested": {"x": {"y": "z"}}}}]`)
	require.Equal(t, 200, a.code, a.raw)
	assert.Equal(t, response{Accepted: 1, Errors: []eventError{}}, a.resp)

	lr := onlyLogs(t, tr).At(0)
	assert.Equal(t, "anvil.export.progress", lr.EventName())
	assert.Equal(t, mustTime(t, "2026-05-01T12:00:01.5Z"), lr.Timestamp())
	assert.NotZero(t, lr.ObservedTimestamp())
	assert.Equal(t, plog.SeverityNumberInfo, lr.SeverityNumber())
	assert.Equal(t, "INFO", lr.SeverityText())
	assert.Equal(t, map[string]any{"rows_processed": int64(5000), "ratio": 0.5}, lr.Body().Map().AsRaw())
	assert.Equal(t, map[string]any{
		"export_id": "e-1", "progress_pct": int64(50), "total_rows": 10000.0, "ok": true, "none": nil,
		"tags": []any{"a", map[string]any{"b": int64(1)}}, "nested": map[string]any{"x": map[string]any{"y": "z"}},
	}, lr.Attributes().AsRaw())
	assert.True(t, lr.TraceID().IsEmpty(), "a point event without trace context has none")
	assert.Empty(t, tr.traces.AllTraces(), "a point event is no span")

	rl := tr.logs.AllLogs()[0].ResourceLogs().At(0)
	assert.Equal(t, map[string]any{"service.name": "anvil"}, rl.Resource().Attributes().AsRaw())
	assert.Equal(t, "github.com/anvil/anvilcol/receiver/anvilreceiver", rl.ScopeLogs().At(0).Scope().Name())
}

func TestStopEventBecomesSpanAndCorrelatedLog(t *testing.T) {
	tr := startTestReceiver(t, nil)
	a := postJSON(t, tr.url, `{"events": [
		{"name": "anvil.agreement.batch_recompute.stop", "time": "2026-05-01T12:00:03Z",
		 "measurements": {"duration": 2000000000}, "metadata": {"queue_id": "q-1", "trace_id": "`+traceA+`", "span_id": "`+spanP+`"}},
		{"name": "anvil.agreement.compute.stop", "time": "2026-05-01T12:00:02Z",
		 "measurements": {"duration": 20000000}, "metadata": {"metric": "kappa", "trace_id": "`+traceA+`", "span_id": "`+spanC+`", "parent_span_id": "`+spanP+`"}},
		{"name": "anvil.agreement.compute.stop", "time": "2026-05-01T12:00:02.5Z",
		 "measurements": {"duration": 75000000}, "metadata": {"traceparent": "00-`+traceA+`-`+spanP+`-01"}},
		{"name": "anvil.agreement.compute.start", "time": "2026-05-01T12:00:02.4Z",
		 "measurements": {}, "metadata": {"traceparent": "00-`+traceA+`-`+spanP+`-01"}},
		{"name": "anvil.label.submit.stop", "time": "2026-05-01T12:00:04Z", "measurements": {"duration": 1000}}
	]}`)
	require.Equal(t, 200, a.code, a.raw)
	spans := onlySpans(t, tr)
	require.Equal(t, 4, spans.Len(), "one span per stop event, none for start")

	parent := spans.At(0)
	assert.Equal(t, "anvil.agreement.batch_recompute", parent.Name())
	assert.Equal(t, traceA, parent.TraceID().String())
	assert.Equal(t, spanP, parent.SpanID().String())
	assert.True(t, parent.ParentSpanID().IsEmpty())
	assert.Equal(t, mustTime(t, "2026-05-01T12:00:01Z"), parent.StartTimestamp(), "start = time - duration")
	assert.Equal(t, mustTime(t, "2026-05-01T12:00:03Z"), parent.EndTimestamp())
	assert.Equal(t, ptrace.SpanKindInternal, parent.Kind())
	assert.Equal(t, ptrace.StatusCodeUnset, parent.Status().Code())
	q, _ := parent.Attributes().Get("queue_id")
	assert.Equal(t, "q-1", q.Str())

	child := spans.At(1)
	assert.Equal(t, "anvil.agreement.compute", child.Name())
	assert.Equal(t, traceA, child.TraceID().String())
	assert.Equal(t, spanC, child.SpanID().String())
	assert.Equal(t, spanP, child.ParentSpanID().String())
	assert.Equal(t, mustTime(t, "2026-05-01T12:00:01.98Z"), child.StartTimestamp())

	viaTraceparent := spans.At(2)
	assert.Equal(t, traceA, viaTraceparent.TraceID().String())
	assert.Equal(t, spanP, viaTraceparent.ParentSpanID().String(), "traceparent's parent-id is the enclosing span")
	assert.False(t, viaTraceparent.SpanID().IsEmpty())
	assert.NotEqual(t, spanP, viaTraceparent.SpanID().String())

	root := spans.At(3)
	assert.False(t, root.TraceID().IsEmpty(), "without trace context a span starts a new trace")
	assert.NotEqual(t, traceA, root.TraceID().String())
	assert.True(t, root.ParentSpanID().IsEmpty())
	assert.Equal(t, uint64(1000), uint64(root.EndTimestamp()-root.StartTimestamp()), "native unit is nanosecond by default")

	// Log records carry the id of the span their event ends, or of the enclosing span.
	logs := onlyLogs(t, tr)
	require.Equal(t, 5, logs.Len())
	for i, sp := range []ptrace.Span{parent, child, viaTraceparent} {
		assert.Equal(t, sp.TraceID(), logs.At(i).TraceID(), "log %d", i)
		assert.Equal(t, sp.SpanID(), logs.At(i).SpanID(), "log %d", i)
	}
	assert.Equal(t, traceA, logs.At(3).TraceID().String())
	assert.Equal(t, spanP, logs.At(3).SpanID().String(), "a start event's enclosing span")
	assert.Equal(t, root.TraceID(), logs.At(4).TraceID())
	assert.Equal(t, root.SpanID(), logs.At(4).SpanID())
}

func TestExceptionEventIsErrorLogAndErrorSpan(t *testing.T) {
	tr := startTestReceiver(t, nil)
	a := postJSON(t, tr.url, `[{"name": "anvil.export.generate.exception", "time": "2026-05-01T12:00:10Z",
		"measurements": {"duration": 900000000},
		"metadata": {"format": "csv", "kind": "error", "reason": "disk full", "stacktrace": "Anvil.Export.run/1 lib/anvil/export.ex:12"}}]`)
	require.Equal(t, 200, a.code, a.raw)

	lr := onlyLogs(t, tr).At(0)
	assert.Equal(t, plog.SeverityNumberError, lr.SeverityNumber())
	assert.Equal(t, "ERROR", lr.SeverityText())
	assert.Equal(t, map[string]any{
		"format": "csv", "kind": "error", "reason": "disk full", "stacktrace": "Anvil.Export.run/1 lib/anvil/export.ex:12",
		"exception.type": "error", "exception.message": "disk full", "exception.stacktrace": "Anvil.Export.run/1 lib/anvil/export.ex:12",
	}, lr.Attributes().AsRaw())

	sp := onlySpans(t, tr).At(0)
	assert.Equal(t, "anvil.export.generate", sp.Name())
	assert.Equal(t, ptrace.StatusCodeError, sp.Status().Code())
	assert.Equal(t, "disk full", sp.Status().Message())
	require.Equal(t, 1, sp.Events().Len())
	se := sp.Events().At(0)
	assert.Equal(t, "exception", se.Name())
	assert.Equal(t, sp.EndTimestamp(), se.Timestamp())
	assert.Equal(t, map[string]any{
		"exception.type": "error", "exception.message": "disk full", "exception.stacktrace": "Anvil.Export.run/1 lib/anvil/export.ex:12",
	}, se.Attributes().AsRaw())
	assert.Equal(t, uint64(900*time.Millisecond), uint64(sp.EndTimestamp()-sp.StartTimestamp()))
}

func TestNativeTimeUnitAndMetricUnitConversion(t *testing.T) {
	tr := startTestReceiver(t, func(c *Config) {
		c.NativeTimeUnit = "microsecond"
		c.DefaultMetrics = false
		c.Metrics = []MetricConfig{{Name: "anvil.assignment.dispatch.duration", Type: TypeDistribution,
			Event: "anvil.assignment.dispatch.stop", Measurement: "duration", Unit: "ms",
			Buckets: []float64{10, 50, 100, 250, 500, 1000}}}
	})
	a := postJSON(t, tr.url, `[
		{"name": "anvil.assignment.dispatch.stop", "time": "2026-05-01T12:00:00Z", "measurements": {"duration": 2500}},
		{"name": "anvil.assignment.dispatch.stop", "time": "2026-05-01T12:00:00Z", "measurements": {"duration": 2500}, "time_unit": "native"},
		{"name": "anvil.assignment.dispatch.stop", "time": "2026-05-01T12:00:00Z", "measurements": {"duration": 0.2}, "time_unit": "second"},
		{"name": "anvil.assignment.dispatch.stop", "time": "2026-05-01T12:00:00Z", "measurements": {"duration": 75}, "time_unit": "ms"},
		{"name": "anvil.assignment.dispatch.stop", "time": "2026-05-01T12:00:00Z", "measurements": {"duration": 2000000}, "time_unit": "nanosecond"}
	]`)
	require.Equal(t, 200, a.code, a.raw)
	spans := onlySpans(t, tr)
	wantDur := []time.Duration{2500 * time.Microsecond, 2500 * time.Microsecond, 200 * time.Millisecond, 75 * time.Millisecond, 2 * time.Millisecond}
	for i, d := range wantDur {
		sp := spans.At(i)
		assert.Equal(t, uint64(d), uint64(sp.EndTimestamp()-sp.StartTimestamp()), "span %d", i)
	}
	// Body keeps the raw measurements.
	v, _ := onlyLogs(t, tr).At(0).Body().Map().Get("duration")
	assert.Equal(t, int64(2500), v.Int())

	md := tr.flush()
	require.Len(t, md, 1)
	m := md[0].ResourceMetrics().At(0).ScopeMetrics().At(0).Metrics().At(0)
	assert.Equal(t, "ms", m.Unit())
	dp := m.Histogram().DataPoints().At(0)
	assert.Equal(t, uint64(5), dp.Count())
	assert.InDelta(t, 2.5+2.5+200+75+2, dp.Sum(), 1e-9)
	assert.Equal(t, []uint64{3, 0, 1, 1, 0, 0, 0}, dp.BucketCounts().AsRaw(), "2.5, 2.5, 2 | 75 | 200")
	assert.InDelta(t, 2.0, dp.Min(), 1e-9)
	assert.InDelta(t, 200.0, dp.Max(), 1e-9)
}

func TestResourceIsRequestOverConfigOverDefault(t *testing.T) {
	tr := startTestReceiver(t, func(c *Config) {
		c.Resource = map[string]any{"deployment.environment": "prod", "host.name": "cfg-host"}
	})
	require.Equal(t, 200, postJSON(t, tr.url, `{"resource": {"host.name": "node-1", "service.instance.id": "anvil@node-1"},
		"events": [{"name": "anvil.queue.created"}]}`).code)
	require.Equal(t, 200, postJSON(t, tr.url, `[{"name": "anvil.queue.created"}]`).code)
	all := tr.logs.AllLogs()
	require.Len(t, all, 2)
	assert.Equal(t, map[string]any{"service.name": "anvil", "deployment.environment": "prod",
		"host.name": "node-1", "service.instance.id": "anvil@node-1"}, all[0].ResourceLogs().At(0).Resource().Attributes().AsRaw())
	assert.Equal(t, map[string]any{"service.name": "anvil", "deployment.environment": "prod", "host.name": "cfg-host"},
		all[1].ResourceLogs().At(0).Resource().Attributes().AsRaw())

	// Metrics keep one series set per resource.
	md := tr.flush()
	require.Len(t, md, 1)
	require.Equal(t, 2, md[0].ResourceMetrics().Len())
	for i := range 2 {
		m := md[0].ResourceMetrics().At(i).ScopeMetrics().At(0).Metrics().At(0)
		assert.Equal(t, "anvil.queue.created.count", m.Name())
		assert.Equal(t, pmetric.MetricTypeSum, m.Type())
		assert.Equal(t, int64(1), m.Sum().DataPoints().At(0).IntValue())
	}
}

func TestTraceContextKeysAreLiftedIntoTheIDFields(t *testing.T) {
	tr := startTestReceiver(t, nil)
	a := postJSON(t, tr.url, `{"events": [
		{"name": "anvil.label.submit.stop", "measurements": {"duration": 5},
		 "metadata": {"queue_id": "q-1", "traceparent": "00-`+traceA+`-`+spanP+`-01"}},
		{"name": "anvil.label.submit.start", "metadata": {"queue_id": "q-1", "traceparent": "00-`+traceA+`-`+spanP+`-00"}},
		{"name": "anvil.agreement.compute.stop", "measurements": {"duration": 5},
		 "metadata": {"trace_id": "`+traceA+`", "span_id": "`+spanC+`", "parent_span_id": "`+spanP+`", "traceparent": "00-`+traceA+`-`+spanC+`-01"}},
		{"name": "anvil.assignment.created", "metadata": {"traceparent": "not-a-traceparent", "span_id": "zz", "parent_span_id": 7}},
		{"name": "anvil.export.generate.stop", "measurements": {"duration": 5},
		 "metadata": {"trace_id": "`+traceA+`", "span_id": "0123456789abcdzz", "parent_span_id": "00000000000000zz"}}
	]}`)
	require.Equal(t, 200, a.code, a.raw)
	logs := onlyLogs(t, tr)
	require.Equal(t, 5, logs.Len())
	spans := onlySpans(t, tr)
	require.Equal(t, 3, spans.Len())

	// traceparent used: gone from the attributes of the log and the span,
	// its sampled flag kept in the flags fields.
	assert.Equal(t, map[string]any{"queue_id": "q-1"}, logs.At(0).Attributes().AsRaw())
	assert.Equal(t, map[string]any{"queue_id": "q-1"}, spans.At(0).Attributes().AsRaw())
	assert.True(t, logs.At(0).Flags().IsSampled())
	assert.Equal(t, uint32(1), spans.At(0).Flags())
	assert.Equal(t, spanP, spans.At(0).ParentSpanID().String())
	// a point event: trace id and the enclosing span are the fields; not sampled
	assert.Equal(t, map[string]any{"queue_id": "q-1"}, logs.At(1).Attributes().AsRaw())
	assert.Equal(t, traceA, logs.At(1).TraceID().String())
	assert.Equal(t, spanP, logs.At(1).SpanID().String())
	assert.False(t, logs.At(1).Flags().IsSampled())
	// explicit ids win and are lifted; the traceparent they overrode stays
	assert.Equal(t, map[string]any{"traceparent": "00-" + traceA + "-" + spanC + "-01"}, spans.At(1).Attributes().AsRaw())
	assert.Equal(t, spanC, spans.At(1).SpanID().String())
	assert.Equal(t, spanP, spans.At(1).ParentSpanID().String())
	// malformed context is no context, and stays as sent
	assert.Equal(t, map[string]any{"traceparent": "not-a-traceparent", "span_id": "zz", "parent_span_id": int64(7)}, logs.At(3).Attributes().AsRaw())
	assert.True(t, logs.At(3).TraceID().IsEmpty())
	// a malformed 16-character span id is not half decoded: a new span id,
	// no parent, both strings kept
	bad := spans.At(2)
	assert.Equal(t, traceA, bad.TraceID().String())
	assert.NotContains(t, bad.SpanID().String(), "0123456789abcd")
	assert.False(t, bad.SpanID().IsEmpty())
	assert.True(t, bad.ParentSpanID().IsEmpty())
	assert.Equal(t, map[string]any{"span_id": "0123456789abcdzz", "parent_span_id": "00000000000000zz"}, bad.Attributes().AsRaw())
}

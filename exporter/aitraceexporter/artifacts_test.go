package aitraceexporter

import (
	"context"
	"encoding/json"
	"reflect"
	"testing"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
)

const eventTime = pcommon.Timestamp(1_700_000_000_123_456_789)

var (
	traceID = pcommon.TraceID{0x4b, 0xf9, 0x2f, 0x35, 0x77, 0xb3, 0x4d, 0xa6, 0xa3, 0xce, 0x92, 0x9d, 0x0e, 0x0e, 0x47, 0x36}
	spanID  = pcommon.SpanID{0x00, 0xf0, 0x67, 0xaa, 0x0b, 0xa9, 0x02, 0xb7}
)

// logs returns one plog.Logs whose records are built by the given functions.
func logs(records ...func(plog.LogRecord)) plog.Logs {
	ld := plog.NewLogs()
	lrs := ld.ResourceLogs().AppendEmpty().ScopeLogs().AppendEmpty().LogRecords()
	for _, f := range records {
		f(lrs.AppendEmpty())
	}
	return ld
}

// exportEvent is an artifact event for export id with queue q.
func exportEvent(name, id, q string) func(plog.LogRecord) {
	return func(lr plog.LogRecord) {
		lr.SetEventName(name)
		lr.SetTimestamp(eventTime)
		if id != "" {
			lr.Attributes().PutStr("export_id", id)
		}
		if q != "" {
			lr.Attributes().PutStr("queue_id", q)
		}
	}
}

func TestArtifactBodyIsTheDocumentedOne(t *testing.T) {
	f := newFakeAITrace(t)
	exp := startExporter(t, testConfig(f.URL), nil)
	ld := logs(func(lr plog.LogRecord) {
		lr.SetEventName("anvil.export.generate.stop")
		lr.SetTimestamp(eventTime)
		lr.SetTraceID(traceID)
		lr.SetSpanID(spanID)
		a := lr.Attributes()
		a.PutStr("export_id", "exp-42")
		a.PutStr("queue_id", "q-7")
		a.PutStr("schema_version_id", "sv-3")
		a.PutStr("format", "jsonl")
		a.PutStr("sha256", "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08")
		a.PutStr("labeler_id", "u-1") // not part of the artifact
		b := lr.Body().SetEmptyMap()  // measurements
		b.PutInt("row_count", 1200)
		b.PutDouble("file_size_bytes", 48213)
		b.PutInt("duration", 5_000_000)
	})
	if err := exp.ConsumeLogs(context.Background(), ld); err != nil {
		t.Fatal(err)
	}
	reqs := f.requests("/v1/artifacts")
	if len(reqs) != 1 {
		t.Fatalf("%d artifact requests, want 1", len(reqs))
	}
	if k := reqs[0].Header.Get("Idempotency-Key"); k != "exp-42" {
		t.Errorf("Idempotency-Key = %q, want exp-42", k)
	}
	if !reqs[0].gzipped {
		t.Error("body not gzip-compressed (the default)")
	}
	want := map[string]any{
		"type":    "dataset",
		"name":    "anvil_export_exp-42",
		"version": "sv-3",
		"metadata": map[string]any{
			"export_id": "exp-42", "queue_id": "q-7", "row_count": 1200.0, "file_size_bytes": 48213.0,
			"sha256": "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08", "format": "jsonl",
		},
		"lineage": map[string]any{"upstream": []any{
			map[string]any{"type": "queue", "id": "q-7"},
			map[string]any{"type": "schema_version", "id": "sv-3"},
		}},
		"trace_id":    "4bf92f3577b34da6a3ce929d0e0e4736",
		"span_id":     "00f067aa0ba902b7",
		"occurred_at": "2023-11-14T22:13:20.123456789Z",
	}
	if !reflect.DeepEqual(reqs[0].body, want) {
		g, _ := json.MarshalIndent(reqs[0].body, "", " ")
		t.Errorf("artifact body:\n%s", g)
	}
	if n := exp.tel.Counter(t, "otelcol_aitrace_artifacts_registered"); n != 1 {
		t.Errorf("artifacts_registered = %d", n)
	}
}

func TestMissingOptionalFieldsAreOmittedNotInvented(t *testing.T) {
	f := newFakeAITrace(t)
	exp := startExporter(t, testConfig(f.URL), nil)
	ld := logs(func(lr plog.LogRecord) {
		lr.SetEventName("anvil.export.completed")
		lr.SetObservedTimestamp(eventTime) // no event timestamp: observed time is used
		lr.Attributes().PutInt("export_id", 42)
		lr.Attributes().PutStr("queue_id", "q-7")
		lr.Attributes().PutStr("row_count", "many") // not a count: left out
	})
	if err := exp.ConsumeLogs(context.Background(), ld); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{
		"type":        "dataset",
		"name":        "anvil_export_42",
		"metadata":    map[string]any{"export_id": "42", "queue_id": "q-7"},
		"lineage":     map[string]any{"upstream": []any{map[string]any{"type": "queue", "id": "q-7"}}},
		"occurred_at": "2023-11-14T22:13:20.123456789Z",
	}
	reqs := f.requests("/v1/artifacts")
	if len(reqs) != 1 || !reflect.DeepEqual(reqs[0].body, want) {
		t.Fatalf("requests %+v", reqs)
	}
}

func TestOneExportReportedByBothEventsRegistersOnce(t *testing.T) {
	f := newFakeAITrace(t)
	exp := startExporter(t, testConfig(f.URL), nil)
	// Both events in one batch, then the completed event again later.
	if err := exp.ConsumeLogs(context.Background(), logs(
		exportEvent("anvil.export.generate.stop", "e1", "q1"),
		exportEvent("anvil.export.completed", "e1", "q1"),
		exportEvent("anvil.export.completed", "e2", "q1"),
	)); err != nil {
		t.Fatal(err)
	}
	if err := exp.ConsumeLogs(context.Background(), logs(exportEvent("anvil.export.completed", "e1", "q1"))); err != nil {
		t.Fatal(err)
	}
	_, posts := f.stored()
	if !reflect.DeepEqual(posts, map[string]int{"e1": 1, "e2": 1}) {
		t.Errorf("artifact POSTs per export = %v, want one each", posts)
	}
	if n := exp.tel.Counter(t, "otelcol_aitrace_artifacts_duplicate"); n != 2 {
		t.Errorf("artifacts_duplicate = %d, want 2", n)
	}
}

func TestRecentSetIsBoundedAndClaimsAreExclusive(t *testing.T) {
	s := newRecentSet(2)
	if !s.claim("a") || s.claim("a") {
		t.Fatal("a second claim of an id in flight must fail")
	}
	s.release("a", false) // failed: may be claimed again
	if !s.claim("a") {
		t.Fatal("an id whose registration failed must be claimable")
	}
	s.release("a", true)
	if s.claim("a") {
		t.Fatal("a registered id must not be claimed")
	}
	for _, id := range []string{"b", "c"} { // c evicts a
		s.claim(id)
		s.release(id, true)
	}
	if len(s.done) != 2 || !s.claim("a") || s.claim("b") || s.claim("c") {
		t.Errorf("done = %v", s.done)
	}
}

func TestRecordsWithoutExportOrQueueIDAreDroppedCountedAndLogged(t *testing.T) {
	f := newFakeAITrace(t)
	exp := startExporter(t, testConfig(f.URL), nil)
	if err := exp.ConsumeLogs(context.Background(), logs(
		exportEvent("anvil.export.completed", "", "q1"),
		exportEvent("anvil.export.completed", "", "q2"),
		exportEvent("anvil.export.completed", "e1", ""),
		exportEvent("anvil.export.completed", "e2", "q1"),
	)); err != nil {
		t.Fatalf("dropping invalid records must not fail the batch: %v", err)
	}
	if reqs := f.requests("/v1/artifacts"); len(reqs) != 1 || reqs[0].Header.Get("Idempotency-Key") != "e2" {
		t.Fatalf("requests %v", reqs)
	}
	if n := exp.tel.Counter(t, "otelcol_aitrace_log_records_dropped", "reason", "missing_export_id"); n != 2 {
		t.Errorf("dropped{missing_export_id} = %d", n)
	}
	if n := exp.tel.Counter(t, "otelcol_aitrace_log_records_dropped", "reason", "missing_queue_id"); n != 1 {
		t.Errorf("dropped{missing_queue_id} = %d", n)
	}
	if n := exp.tel.Logs.FilterMessageSnippet("cannot register an artifact").Len(); n != 2 {
		t.Errorf("logged %d times, want once per reason", n)
	}
}

func TestOtherRecordsAreIgnoredAndCounted(t *testing.T) {
	f := newFakeAITrace(t)
	cfg := testConfig(f.URL)
	cfg.ArtifactEvents = []string{"anvil.export.*.stop"}
	exp := startExporter(t, cfg, nil)
	if err := exp.ConsumeLogs(context.Background(), logs(
		exportEvent("anvil.export.progress", "e1", "q1"),
		exportEvent("anvil.export.completed", "e1", "q1"), // not in this config's artifact_events
		func(lr plog.LogRecord) { lr.Body().SetStr("plain log line") },
		func(lr plog.LogRecord) { // name in the event.name attribute, values in the body
			lr.Attributes().PutStr("event.name", "anvil.export.generate.stop")
			lr.Body().SetEmptyMap().PutStr("export_id", "e9")
			lr.Body().Map().PutStr("queue_id", "q9")
		},
	)); err != nil {
		t.Fatal(err)
	}
	reqs := f.requests("/v1/artifacts")
	if len(reqs) != 1 || reqs[0].Header.Get("Idempotency-Key") != "e9" {
		t.Fatalf("requests %v", reqs)
	}
	if n := exp.tel.Counter(t, "otelcol_aitrace_log_records_ignored"); n != 3 {
		t.Errorf("log_records_ignored = %d, want 3", n)
	}
}

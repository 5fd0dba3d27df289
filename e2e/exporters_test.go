//go:build e2e

package e2e

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/anvil/anvilcol/internal/e2etest"
)

// exportersConfig: OTLP in (stock otlp receiver), metrics -> foundation,
// logs and traces -> aitrace, both with a bearer token from the environment
// and a persistent queue on file_storage.
func exportersConfig(health, otlpHTTP, telemetry int) string {
	return fmt.Sprintf(`
extensions:
  health_check:
    endpoint: 127.0.0.1:%d
  file_storage:
    directory: ${env:QUEUE_DIR}
  bearertokenauth/foundation:
    token: ${env:FOUNDATION_TOKEN}
  bearertokenauth/aitrace:
    token: ${env:AITRACE_TOKEN}

receivers:
  otlp:
    protocols:
      http:
        endpoint: 127.0.0.1:%d

exporters:
  foundation:
    endpoint: ${env:FOUNDATION_ENDPOINT}
    auth:
      authenticator: bearertokenauth/foundation
    metric_prefix: "anvil."
    timeout: 2s
    retry_on_failure:
      initial_interval: 50ms
      max_interval: 200ms
      max_elapsed_time: 0s
    sending_queue:
      storage: file_storage
      batch:
        flush_timeout: 50ms
  aitrace:
    endpoint: ${env:AITRACE_ENDPOINT}
    auth:
      authenticator: bearertokenauth/aitrace
    timeout: 2s
    retry_on_failure:
      initial_interval: 50ms
      max_interval: 200ms
      max_elapsed_time: 0s
    sending_queue:
      storage: file_storage
      batch:
        flush_timeout: 50ms

service:
  extensions: [health_check, file_storage, bearertokenauth/foundation, bearertokenauth/aitrace]
%s
  pipelines:
    metrics:
      receivers: [otlp]
      exporters: [foundation]
    logs:
      receivers: [otlp]
      exporters: [aitrace]
    traces:
      receivers: [otlp]
      exporters: [aitrace]
`, health, otlpHTTP, e2etest.TelemetryYAML(telemetry))
}

const exportersEventTime = pcommon.Timestamp(1_700_000_000_123_456_789)

// exportersSend posts a counter and a histogram, the two events of n
// exports (exp-000..) plus an unrelated event, and a two-span trace.
func exportersSend(t *testing.T, otlpURL string, n int) {
	t.Helper()
	md := pmetric.NewMetrics()
	rm := md.ResourceMetrics().AppendEmpty()
	rm.Resource().Attributes().PutStr("service.name", "anvil")
	rm.Resource().Attributes().PutStr("tenant_id", "acme")
	ms := rm.ScopeMetrics().AppendEmpty().Metrics()
	c := ms.AppendEmpty()
	c.SetName("label.submit.count")
	s := c.SetEmptySum()
	s.SetIsMonotonic(true)
	s.SetAggregationTemporality(pmetric.AggregationTemporalityDelta)
	dp := s.DataPoints().AppendEmpty()
	dp.SetIntValue(7)
	dp.SetTimestamp(exportersEventTime)
	dp.Attributes().PutStr("queue_id", "q-7")
	h := ms.AppendEmpty()
	h.SetName("label.submit.duration")
	hh := h.SetEmptyHistogram()
	hh.SetAggregationTemporality(pmetric.AggregationTemporalityDelta)
	hp := hh.DataPoints().AppendEmpty()
	hp.SetTimestamp(exportersEventTime)
	hp.SetCount(3)
	hp.SetSum(60)
	hp.ExplicitBounds().FromRaw([]float64{10, 50})
	hp.BucketCounts().FromRaw([]uint64{1, 1, 1})
	e2etest.PostMetrics(t, otlpURL, md)

	ld := plog.NewLogs()
	lrs := ld.ResourceLogs().AppendEmpty().ScopeLogs().AppendEmpty().LogRecords()
	for i := 0; i < n; i++ {
		for _, name := range []string{"anvil.export.generate.stop", "anvil.export.completed"} {
			lr := lrs.AppendEmpty()
			lr.SetEventName(name)
			lr.SetTimestamp(exportersEventTime)
			lr.Attributes().PutStr("export_id", fmt.Sprintf("exp-%03d", i))
			lr.Attributes().PutStr("queue_id", "q-7")
			lr.Attributes().PutStr("schema_version_id", "sv-3")
			lr.Body().SetEmptyMap().PutInt("row_count", 1200)
		}
	}
	other := lrs.AppendEmpty()
	other.SetEventName("anvil.label.submit.stop")
	other.Attributes().PutStr("queue_id", "q-7")
	e2etest.PostLogs(t, otlpURL, ld)

	td := ptrace.NewTraces()
	spans := td.ResourceSpans().AppendEmpty().ScopeSpans().AppendEmpty().Spans()
	tid := pcommon.TraceID{0x4b, 0xf9, 0x2f, 0x35, 0x77, 0xb3, 0x4d, 0xa6, 0xa3, 0xce, 0x92, 0x9d, 0x0e, 0x0e, 0x47, 0x36}
	for i, name := range []string{"anvil.export.generate", "anvil.label.submit"} {
		sp := spans.AppendEmpty()
		sp.SetTraceID(tid)
		sp.SetSpanID(pcommon.SpanID{byte(i + 1), 2, 3, 4, 5, 6, 7, 8})
		if i == 1 {
			sp.SetParentSpanID(pcommon.SpanID{1, 2, 3, 4, 5, 6, 7, 8})
			sp.Status().SetCode(ptrace.StatusCodeError)
		}
		sp.SetName(name)
		sp.SetStartTimestamp(exportersEventTime)
		sp.SetEndTimestamp(exportersEventTime + 1000)
	}
	e2etest.PostTraces(t, otlpURL, td)
}

type exportersRig struct {
	health, otlp, telemetry int
	env                     map[string]string
}

func newExportersRig(t *testing.T, foundationURL, aitraceURL, queueDir string) exportersRig {
	return exportersRig{
		health: e2etest.FreePort(t), otlp: e2etest.FreePort(t), telemetry: e2etest.FreePort(t),
		env: map[string]string{
			"FOUNDATION_ENDPOINT": foundationURL, "FOUNDATION_TOKEN": "f-token",
			"AITRACE_ENDPOINT": aitraceURL, "AITRACE_TOKEN": "a-token",
			"QUEUE_DIR": queueDir,
		},
	}
}

func (r exportersRig) start(t *testing.T) *e2etest.Collector {
	return e2etest.Start(t, e2etest.Options{
		ConfigYAML: exportersConfig(r.health, r.otlp, r.telemetry),
		Env:        r.env,
		HealthPort: r.health,
	})
}

// exportersDrained says whether the collector's own metrics on port
// telemetry show all that exportersSend(n) posts sent (foundation: 2 metric
// points; aitrace: 2n+1 log records and 2 spans) and every sending queue
// empty: after that no request can reach the intakes.
func exportersDrained(t *testing.T, telemetry, n int) bool {
	url := fmt.Sprintf("http://127.0.0.1:%d/metrics", telemetry)
	sent := func(what, exporter string) float64 {
		return scrapeSum(t, url, "otelcol_exporter_sent_"+what, map[string]string{"exporter": exporter})
	}
	queued, ok := scrapeGauge(t, url, "otelcol_exporter_queue_size", nil)
	return sent("metric_points", "foundation") >= 2 && sent("log_records", "aitrace") >= float64(2*n+1) &&
		sent("spans", "aitrace") >= 2 && ok && queued == 0
}

func exportersRecords(t *testing.T, reqs []e2etest.Request) []map[string]any {
	var out []map[string]any
	for _, r := range reqs {
		var body struct {
			Metrics []map[string]any `json:"metrics"`
		}
		if err := json.Unmarshal(r.Body, &body); err != nil {
			t.Fatalf("foundation body: %v: %s", err, r.Body)
		}
		out = append(out, body.Metrics...)
	}
	return out
}

func exportersSpanCount(t *testing.T, reqs []e2etest.Request) int {
	n := 0
	for _, r := range reqs {
		var body struct {
			Traces []struct {
				TraceID string           `json:"trace_id"`
				Spans   []map[string]any `json:"spans"`
			} `json:"traces"`
		}
		if err := json.Unmarshal(r.Body, &body); err != nil {
			t.Fatalf("aitrace traces body: %v", err)
		}
		for _, tr := range body.Traces {
			n += len(tr.Spans)
		}
	}
	return n
}

func TestFoundationAndAITraceDeliverThroughTheBinary(t *testing.T) {
	foundation := e2etest.NewIntake(t)
	aitrace := e2etest.NewIntake(t)
	rig := newExportersRig(t, foundation.URL, aitrace.URL, t.TempDir())
	rig.start(t)
	exportersSend(t, fmt.Sprintf("http://127.0.0.1:%d", rig.otlp), 1)

	e2etest.Eventually(t, 20*time.Second, func() bool {
		return len(foundation.RequestsTo("/v1/metrics")) > 0 && len(aitrace.RequestsTo("/v1/artifacts")) > 0 &&
			len(aitrace.RequestsTo("/v1/traces")) > 0
	}, "foundation metrics, aitrace artifacts and traces")
	// No second artifact POST can come once the exporters have sent all that
	// was posted and their queues are empty.
	e2etest.Eventually(t, 20*time.Second, func() bool { return exportersDrained(t, rig.telemetry, 1) },
		"the exporters' own metrics do not show everything sent and the queues empty")

	// Foundation: both records, exact shape, bearer token, gzip.
	freqs := foundation.RequestsTo("/v1/metrics")
	if got := freqs[0].Header.Get("Authorization"); got != "Bearer f-token" {
		t.Errorf("foundation Authorization = %q", got)
	}
	if got := freqs[0].Header.Get("Content-Encoding"); got != "gzip" {
		t.Errorf("foundation Content-Encoding = %q, want gzip", got)
	}
	recs := exportersRecords(t, freqs)
	byName := map[string]map[string]any{}
	for _, r := range recs {
		byName[r["metric_name"].(string)] = r
	}
	tags := map[string]any{"queue_id": "q-7", "service.name": "anvil", "tenant_id": "acme"}
	want := map[string]map[string]any{
		"anvil.label.submit.count": {"metric_name": "anvil.label.submit.count", "type": "counter", "temporality": "delta",
			"value": 7.0, "tags": tags, "timestamp": 1700000000123.0},
		"anvil.label.submit.duration": {"metric_name": "anvil.label.submit.duration", "type": "distribution", "temporality": "delta",
			"tags": map[string]any{"service.name": "anvil", "tenant_id": "acme"}, "timestamp": 1700000000123.0,
			"count": 3.0, "sum": 60.0, "buckets": []any{
				map[string]any{"le": 10.0, "count": 1.0}, map[string]any{"le": 50.0, "count": 1.0}, map[string]any{"le": "+Inf", "count": 1.0}}},
	}
	for name, w := range want {
		g, _ := json.Marshal(byName[name])
		ws, _ := json.Marshal(w)
		if string(g) != string(ws) {
			t.Errorf("foundation record %s:\n got %s\nwant %s", name, g, ws)
		}
	}

	// AITrace artifact: one registration for the export reported twice.
	arts := aitrace.RequestsTo("/v1/artifacts")
	if len(arts) != 1 {
		t.Fatalf("%d artifact POSTs for one export reported by two events, want 1", len(arts))
	}
	if arts[0].Header.Get("Idempotency-Key") != "exp-000" || arts[0].Header.Get("Authorization") != "Bearer a-token" {
		t.Errorf("artifact headers %v", arts[0].Header)
	}
	wantArt := `{"type":"dataset","name":"anvil_export_exp-000","version":"sv-3",` +
		`"metadata":{"export_id":"exp-000","queue_id":"q-7","row_count":1200},` +
		`"lineage":{"upstream":[{"type":"queue","id":"q-7"},{"type":"schema_version","id":"sv-3"}]},` +
		`"occurred_at":"2023-11-14T22:13:20.123456789Z"}`
	if got := strings.TrimSpace(string(arts[0].Body)); got != wantArt {
		t.Errorf("artifact body:\n got %s\nwant %s", got, wantArt)
	}

	// AITrace traces: one trace group with both spans.
	treqs := aitrace.RequestsTo("/v1/traces")
	var tb struct {
		Traces []struct {
			TraceID string           `json:"trace_id"`
			Spans   []map[string]any `json:"spans"`
		} `json:"traces"`
	}
	if err := json.Unmarshal(treqs[0].Body, &tb); err != nil {
		t.Fatal(err)
	}
	if len(tb.Traces) != 1 || tb.Traces[0].TraceID != "4bf92f3577b34da6a3ce929d0e0e4736" || len(tb.Traces[0].Spans) != 2 {
		t.Fatalf("traces body %s", treqs[0].Body)
	}
	child := tb.Traces[0].Spans[1]
	if child["parent_span_id"] != "0102030405060708" || child["status"] != "error" ||
		child["start_time"] != "2023-11-14T22:13:20.123456789Z" || child["end_time"] != "2023-11-14T22:13:20.123457789Z" {
		t.Errorf("child span %v", child)
	}

	// Own telemetry.
	fams, err := e2etest.Scrape(t, fmt.Sprintf("http://127.0.0.1:%d/metrics", rig.telemetry))
	if err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]float64{
		"otelcol_foundation_records_sent":      2,
		"otelcol_aitrace_artifacts_registered": 1,
		"otelcol_aitrace_artifacts_duplicate":  1,
		"otelcol_aitrace_log_records_ignored":  1,
		"otelcol_aitrace_spans_sent":           2,
	} {
		f, ok := fams[name]
		if !ok {
			var have []string
			for n := range fams {
				if strings.Contains(n, "aitrace") || strings.Contains(n, "foundation") {
					have = append(have, n)
				}
			}
			t.Errorf("own metric %s missing; have %v", name, have)
			continue
		}
		var sum float64
		for _, m := range f.Metric {
			sum += m.GetCounter().GetValue()
		}
		if sum != want {
			t.Errorf("%s = %v, want %v", name, sum, want)
		}
	}
}

// TestFoundationAndAITraceSurviveRestartThroughTheBinary: the collector
// queues data while Foundation and AITrace are down (connection refused),
// is stopped, restarted with the endpoints up, and delivers everything:
// each export registered exactly once, every metric record and span.
func TestFoundationAndAITraceSurviveRestartThroughTheBinary(t *testing.T) {
	const exports = 20
	queueDir := t.TempDir()
	down := fmt.Sprintf("http://127.0.0.1:%d", e2etest.FreePort(t)) // nothing listens there
	rig := newExportersRig(t, down, down, queueDir)
	col := rig.start(t)
	exportersSend(t, fmt.Sprintf("http://127.0.0.1:%d", rig.otlp), exports)
	e2etest.Eventually(t, 20*time.Second, func() bool {
		return strings.Count(col.Output(), "Exporting failed. Will retry") >= 3
	}, "the exporters to try the down endpoints")
	if err := col.Stop(); err != nil {
		t.Fatalf("stop with data queued: %v", err)
	}

	foundation := e2etest.NewIntake(t)
	aitrace := e2etest.NewIntake(t)
	rig2 := newExportersRig(t, foundation.URL, aitrace.URL, queueDir) // same queue directory
	rig2.start(t)
	e2etest.Eventually(t, 30*time.Second, func() bool {
		return len(exportersRecords(t, foundation.RequestsTo("/v1/metrics"))) >= 2 &&
			len(aitrace.RequestsTo("/v1/artifacts")) >= exports &&
			exportersSpanCount(t, aitrace.RequestsTo("/v1/traces")) >= 2
	}, "the queued data to arrive after the restart")
	// Any duplicate would be one of the restarted exporters' sends: none can
	// come once they have sent all that was queued and the queues are empty.
	e2etest.Eventually(t, 20*time.Second, func() bool { return exportersDrained(t, rig2.telemetry, exports) },
		"the restarted exporters' own metrics do not show the queued data sent and the queues empty")

	posts := map[string]int{}
	for _, r := range aitrace.RequestsTo("/v1/artifacts") {
		posts[r.Header.Get("Idempotency-Key")]++
	}
	for i := 0; i < exports; i++ {
		if id := fmt.Sprintf("exp-%03d", i); posts[id] != 1 {
			t.Errorf("export %s registered %d times, want exactly once", id, posts[id])
		}
	}
	if len(posts) != exports {
		t.Errorf("%d distinct exports registered, want %d", len(posts), exports)
	}
	names := map[string]bool{}
	for _, r := range exportersRecords(t, foundation.RequestsTo("/v1/metrics")) {
		names[r["metric_name"].(string)] = true
	}
	if !names["anvil.label.submit.count"] || !names["anvil.label.submit.duration"] {
		t.Errorf("foundation records after restart: %v", names)
	}
}

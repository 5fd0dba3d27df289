//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"math"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/DataDog/datadog-go/v5/statsd"
	dto "github.com/prometheus/client_model/go"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlplog/otlploghttp"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	otellog "go.opentelemetry.io/otel/log"
	sdklog "go.opentelemetry.io/otel/sdk/log"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"

	"github.com/anvil/anvilcol/internal/e2etest"
)

func postJSON(ctx context.Context, t *testing.T, url, body string) int {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// passthroughConfig: OTLP/HTTP and StatsD in, batch, OTLP/HTTP out to sink.
func passthroughConfig(health, otlpHTTP, statsdPort, telemetry int, sinkURL string) string {
	return fmt.Sprintf(`
extensions:
  health_check:
    endpoint: 127.0.0.1:%d
receivers:
  otlp:
    protocols:
      http:
        endpoint: 127.0.0.1:%d
  statsd:
    endpoint: 127.0.0.1:%d
    aggregation_interval: 1s
    enable_metric_type: true
    timer_histogram_mapping:
      - statsd_type: timing
        observer_type: histogram
        histogram:
          max_size: 100
processors:
  batch:
    timeout: 200ms
exporters:
  otlp_http:
    endpoint: %s
    compression: gzip
service:
  extensions: [health_check]
%s  pipelines:
    traces:
      receivers: [otlp]
      processors: [batch]
      exporters: [otlp_http]
    logs:
      receivers: [otlp]
      processors: [batch]
      exporters: [otlp_http]
    metrics:
      receivers: [statsd]
      processors: [batch]
      exporters: [otlp_http]
`, health, otlpHTTP, statsdPort, sinkURL, e2etest.TelemetryYAML(telemetry))
}

type stockRig struct {
	sink                *e2etest.OTLPSink
	otlpHTTP, statsdUDP int
}

func startStockRig(t *testing.T) stockRig {
	t.Helper()
	sink := e2etest.NewOTLPSink(t)
	health, otlpHTTP, statsdUDP := e2etest.FreePort(t), e2etest.FreePort(t), e2etest.FreeUDPPort(t)
	e2etest.Start(t, e2etest.Options{
		ConfigYAML: passthroughConfig(health, otlpHTTP, statsdUDP, e2etest.FreePort(t), sink.URL),
		HealthPort: health,
	})
	return stockRig{sink: sink, otlpHTTP: otlpHTTP, statsdUDP: statsdUDP}
}

func TestOTelSDKTracesAndLogsReachTheSinkUnchanged(t *testing.T) {
	rig := startStockRig(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	endpoint := fmt.Sprintf("127.0.0.1:%d", rig.otlpHTTP)
	res := resource.NewSchemaless(attribute.String("service.name", "anvil"), attribute.String("tenant_id", "t-1"))

	// Traces: a parent and a child span from the official SDK.
	texp, err := otlptracehttp.New(ctx, otlptracehttp.WithEndpoint(endpoint), otlptracehttp.WithInsecure())
	if err != nil {
		t.Fatal(err)
	}
	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(texp), sdktrace.WithResource(res))
	tracer := tp.Tracer("anvil.e2e")
	pctx, parent := tracer.Start(ctx, "anvil.export.generate", trace.WithAttributes(attribute.String("export_id", "e-42")))
	_, child := tracer.Start(pctx, "anvil.label.submit", trace.WithAttributes(attribute.String("queue_id", "q-1"), attribute.Int("rows", 7)))
	child.End()
	parent.End()
	if err := tp.Shutdown(ctx); err != nil {
		t.Fatalf("trace provider shutdown (export): %v", err)
	}

	// Logs: an event record from the official SDK.
	lexp, err := otlploghttp.New(ctx, otlploghttp.WithEndpoint(endpoint), otlploghttp.WithInsecure())
	if err != nil {
		t.Fatal(err)
	}
	lp := sdklog.NewLoggerProvider(sdklog.WithProcessor(sdklog.NewSimpleProcessor(lexp)), sdklog.WithResource(res))
	var rec otellog.Record
	rec.SetEventName("anvil.agreement.low_score")
	rec.SetSeverity(otellog.SeverityInfo)
	rec.SetBody(otellog.MapValue(otellog.Float64("value", 0.31)))
	rec.AddAttributes(otellog.String("dimension", "bbox"), otellog.String("sample_id", "s-9"))
	rec.SetTimestamp(time.Unix(1_780_000_000, 123456789))
	lp.Logger("anvil.e2e").Emit(ctx, rec)
	if err := lp.Shutdown(ctx); err != nil {
		t.Fatalf("logger provider shutdown (export): %v", err)
	}

	e2etest.Eventually(t, 15*time.Second, func() bool {
		return rig.sink.SpanCount() == 2 && rig.sink.LogRecordCount() == 1
	}, "sink has %d spans (want 2) and %d log records (want 1)", rig.sink.SpanCount(), rig.sink.LogRecordCount())

	spans := map[string]struct {
		tid, sid, psid string
		attrs          map[string]any
		res            map[string]any
	}{}
	for _, td := range rig.sink.Traces() {
		for i := 0; i < td.ResourceSpans().Len(); i++ {
			rs := td.ResourceSpans().At(i)
			for j := 0; j < rs.ScopeSpans().Len(); j++ {
				ss := rs.ScopeSpans().At(j)
				if ss.Scope().Name() != "anvil.e2e" {
					t.Errorf("scope name %q, want anvil.e2e", ss.Scope().Name())
				}
				for k := 0; k < ss.Spans().Len(); k++ {
					s := ss.Spans().At(k)
					spans[s.Name()] = struct {
						tid, sid, psid string
						attrs          map[string]any
						res            map[string]any
					}{s.TraceID().String(), s.SpanID().String(), s.ParentSpanID().String(), s.Attributes().AsRaw(), rs.Resource().Attributes().AsRaw()}
				}
			}
		}
	}
	p, c := spans["anvil.export.generate"], spans["anvil.label.submit"]
	if p.tid != parent.SpanContext().TraceID().String() || p.sid != parent.SpanContext().SpanID().String() {
		t.Errorf("parent span ids changed: got %s/%s", p.tid, p.sid)
	}
	if c.tid != p.tid || c.psid != p.sid || c.sid != child.SpanContext().SpanID().String() {
		t.Errorf("child span link changed: trace %s parent %s, want %s/%s", c.tid, c.psid, p.tid, p.sid)
	}
	if c.attrs["queue_id"] != "q-1" || c.attrs["rows"] != int64(7) || p.attrs["export_id"] != "e-42" {
		t.Errorf("span attributes changed: parent %v child %v", p.attrs, c.attrs)
	}
	if c.res["service.name"] != "anvil" || c.res["tenant_id"] != "t-1" {
		t.Errorf("resource changed: %v", c.res)
	}

	lr := rig.sink.Logs()[0].ResourceLogs().At(0).ScopeLogs().At(0).LogRecords().At(0)
	if lr.EventName() != "anvil.agreement.low_score" {
		t.Errorf("EventName = %q", lr.EventName())
	}
	if got := lr.Body().Map().AsRaw()["value"]; got != 0.31 {
		t.Errorf("body value = %v, want 0.31", got)
	}
	if got := lr.Attributes().AsRaw(); got["dimension"] != "bbox" || got["sample_id"] != "s-9" {
		t.Errorf("log attributes = %v", got)
	}
	if lr.Timestamp() != pcommon.NewTimestampFromTime(time.Unix(1_780_000_000, 123456789)) {
		t.Errorf("timestamp = %v", lr.Timestamp())
	}
	if lr.SeverityNumber() != 9 {
		t.Errorf("severity = %v, want INFO (9)", lr.SeverityNumber())
	}
}

func TestDogStatsDClientMetricsComeOutAsExpected(t *testing.T) {
	rig := startStockRig(t)
	addr := fmt.Sprintf("127.0.0.1:%d", rig.statsdUDP)

	// Client-side aggregation off, so the sample rate goes on the wire (|@0.5)
	// and the receiver must scale each received count by 1/rate.
	client, err := statsd.New(addr, statsd.WithoutClientSideAggregation(), statsd.WithBufferFlushInterval(50*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	const sent = 400
	for i := 0; i < sent; i++ {
		if err := client.Count("anvil.label.submit", 1, []string{"queue_id:q-7", "env:e2e"}, 0.5); err != nil {
			t.Fatal(err)
		}
		if i%50 == 49 {
			_ = client.Flush()
			time.Sleep(5 * time.Millisecond) // pacing: UDP on loopback, keep the socket buffer from overflowing
		}
	}
	for _, ms := range []time.Duration{120 * time.Millisecond, 80 * time.Millisecond, 40 * time.Millisecond} {
		if err := client.Timing("anvil.assignment.dispatch", ms, []string{"policy_type:round_robin"}, 1); err != nil {
			t.Fatal(err)
		}
	}
	if err := client.Close(); err != nil {
		t.Fatal(err)
	}

	var count float64
	var timerCount uint64
	var timerSum float64
	var countAttrs, timerAttrs map[string]any
	e2etest.Eventually(t, 15*time.Second, func() bool {
		count, timerCount, timerSum = 0, 0, 0
		for _, md := range rig.sink.Metrics() {
			rms := md.ResourceMetrics()
			for i := 0; i < rms.Len(); i++ {
				sms := rms.At(i).ScopeMetrics()
				for j := 0; j < sms.Len(); j++ {
					ms := sms.At(j).Metrics()
					for k := 0; k < ms.Len(); k++ {
						m := ms.At(k)
						switch {
						case m.Name() == "anvil.label.submit" && m.Type() == pmetric.MetricTypeSum:
							for p := 0; p < m.Sum().DataPoints().Len(); p++ {
								dp := m.Sum().DataPoints().At(p)
								count += float64(dp.IntValue()) + dp.DoubleValue()
								countAttrs = dp.Attributes().AsRaw()
							}
						case m.Name() == "anvil.assignment.dispatch" && m.Type() == pmetric.MetricTypeExponentialHistogram:
							for p := 0; p < m.ExponentialHistogram().DataPoints().Len(); p++ {
								dp := m.ExponentialHistogram().DataPoints().At(p)
								timerCount += dp.Count()
								timerSum += dp.Sum()
								timerAttrs = dp.Attributes().AsRaw()
							}
						}
					}
				}
			}
		}
		return timerCount == 3 && count > 0
	}, "timer histogram count %d (want 3), counter total %v", timerCount, count)

	// ~sent/2 packets arrive, each scaled by 1/0.5: the total is near `sent`
	// (4 standard deviations of the binomial draw), and even.
	if count < sent-80 || count > sent+80 || math.Mod(count, 2) != 0 {
		t.Errorf("counter total %v: want about %d (sample rate 0.5 scaled back), an even number", count, sent)
	}
	if countAttrs["queue_id"] != "q-7" || countAttrs["env"] != "e2e" || countAttrs["metric_type"] != "counter" {
		t.Errorf("counter attributes %v: want the DogStatsD tags and metric_type=counter", countAttrs)
	}
	if timerSum != 240 {
		t.Errorf("timer sum %v ms, want 240", timerSum)
	}
	if timerAttrs["policy_type"] != "round_robin" {
		t.Errorf("timer attributes %v", timerAttrs)
	}
}

// TestLocalConfigStatsDReachesPrometheus: DogStatsD counters, gauges and
// timers sent to the shipped config/local.yaml come out of its Prometheus
// endpoint with their values, under `statsd_` names (transform/statsd: one
// source per metric name) and never under the unprefixed ones (counters are
// monotonic there: a non-monotonic delta sum would be dropped by the
// Prometheus exporter).
func TestLocalConfigStatsDReachesPrometheus(t *testing.T) {
	env := localEnv(t)
	env["ANVILCOL_METRICS_FLUSH_INTERVAL"] = "1s"
	health, statsd, prom := envPort(t, env, "ANVILCOL_HEALTH_PORT"), envPort(t, env, "ANVILCOL_STATSD_PORT"), envPort(t, env, "ANVILCOL_PROMETHEUS_PORT")
	e2etest.Start(t, e2etest.Options{Config: "config/local.yaml", Env: env, HealthPort: health})
	conn, err := net.Dial("udp", fmt.Sprintf("127.0.0.1:%d", statsd))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	for i := 0; i < 7; i++ {
		fmt.Fprintf(conn, "anvil.jobs.processed:1|c|#queue_id:q1\n")
	}
	fmt.Fprintf(conn, "anvil.queue.depth:42|g|#queue_id:q1\n")
	for _, ms := range []int{12, 30, 250} {
		fmt.Fprintf(conn, "anvil.jobs.latency:%d|ms|#queue_id:q1\n", ms)
	}
	url := fmt.Sprintf("http://127.0.0.1:%d/metrics", prom)
	var got struct {
		Counter, Gauge float64
		Timings        uint64
	}
	var fams map[string]*dto.MetricFamily
	e2etest.Eventually(t, 20*time.Second, func() bool {
		fams, err = e2etest.Scrape(t, url)
		if err != nil {
			return false
		}
		if f := fams["statsd_anvil_jobs_processed_total"]; f != nil && len(f.GetMetric()) == 1 {
			got.Counter = f.GetMetric()[0].GetCounter().GetValue()
		}
		if f := fams["statsd_anvil_queue_depth"]; f != nil && len(f.GetMetric()) == 1 {
			got.Gauge = f.GetMetric()[0].GetGauge().GetValue()
		}
		if f := fams["statsd_anvil_jobs_latency"]; f != nil && len(f.GetMetric()) == 1 {
			got.Timings = f.GetMetric()[0].GetHistogram().GetSampleCount()
		}
		return got.Counter == 7 && got.Gauge == 42 && got.Timings == 3
	}, "StatsD at Prometheus: %+v, want counter 7, gauge 42, timer count 3", &got)
	for name := range fams {
		if strings.HasPrefix(name, "anvil_") {
			t.Errorf("%s: a StatsD metric under an unprefixed name (want only statsd_*)", name)
		}
	}
}

// prometheusConflictLogs are what the prometheus exporter (v0.155.0) and its
// registry log when two sources share a metric name: a type conflict drops
// one of the two on every scrape ("failed to convert metric X: instrument
// type conflict, using existing type definition. ..."), a help conflict keeps
// the first ("Instrument description conflict, using existing"), and a
// series gathered twice fails the gather ("error gathering metrics: ...
// collected metric ... was collected before with the same name and label
// values").
var prometheusConflictLogs = []string{
	"instrument type conflict",
	"Instrument description conflict",
	"failed to convert metric",
	"was collected before",
	"error gathering metrics",
}

// TestLocalConfigStatsDBesideTheForwarderKeepsOneSourcePerName: an Anvil
// node that runs TelemetryMetricsStatsd beside AnvilCol.Forwarder sends the
// same names both ways. On the shipped config/local.yaml the StatsD ones are
// `statsd_*`, so at Prometheus the forwarder's summary
// anvil_agreement_low_score_value and StatsD's gauge of that name, and both
// label submit counters, are separate families, each with its own value, and
// the exporter logs no name conflict.
func TestLocalConfigStatsDBesideTheForwarderKeepsOneSourcePerName(t *testing.T) {
	env := localEnv(t)
	env["ANVILCOL_METRICS_FLUSH_INTERVAL"] = "1s"
	env["ANVILCOL_DEBUG_VERBOSITY"] = "basic"
	health, statsd, prom, anvil := envPort(t, env, "ANVILCOL_HEALTH_PORT"), envPort(t, env, "ANVILCOL_STATSD_PORT"),
		envPort(t, env, "ANVILCOL_PROMETHEUS_PORT"), envPort(t, env, "ANVILCOL_ANVIL_PORT")
	c := e2etest.Start(t, e2etest.Options{Config: "config/local.yaml", Env: env, HealthPort: health})

	// StatsD, as TelemetryMetricsStatsd sends a last_value and a counter
	// named like two catalog metrics.
	conn, err := net.Dial("udp", fmt.Sprintf("127.0.0.1:%d", statsd))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "anvil.agreement.low_score.value:0.3|g\n")
	const statsdSubmits = 5
	for i := 0; i < statsdSubmits; i++ {
		fmt.Fprintf(conn, "anvil.label.submit.count:1|c\n")
	}

	// The forwarder's events: 3 low scores (the catalog's summary
	// anvil.agreement.low_score.value) and 2 label submits
	// (anvil.label.submit.count).
	now := time.Now().UnixNano()
	var events []string
	for i, v := range []float64{0.42, 0.55, 0.31} {
		events = append(events, fmt.Sprintf(`{"name":"anvil.agreement.low_score","time_unix_nano":%d,"measurements":{"value":%v},"metadata":{"sample_id":"s-%d","dimension":"bbox","threshold":0.6}}`, now, v, i))
	}
	const forwarderSubmits = 2
	for i := 0; i < forwarderSubmits; i++ {
		events = append(events, fmt.Sprintf(`{"name":"anvil.label.submit.stop","time_unix_nano":%d,"measurements":{"duration":30000000},"metadata":{"queue_id":"q-1","schema_version_id":"sv-3","labeler_id":"u-7","sample_id":"s-%d","assignment_id":"a-%d"}}`, now, i, i))
	}
	body := `{"resource":{"service.name":"anvil","service.instance.id":"anvil@node-1"},"events":[` + strings.Join(events, ",") + `]}`
	code, a := anvilPost(t, fmt.Sprintf("http://127.0.0.1:%d/v1/events", anvil), "application/json", []byte(body))
	if code != http.StatusOK || a.Accepted != len(events) || a.Rejected != 0 {
		t.Fatalf("forwarder events: HTTP %d %+v, want all %d accepted", code, a, len(events))
	}

	url := fmt.Sprintf("http://127.0.0.1:%d/metrics", prom)
	type seen struct {
		summaryCount              uint64  // anvil_agreement_low_score_value (forwarder, summary)
		gauge                     float64 // statsd_anvil_agreement_low_score_value (StatsD, gauge)
		forwarderSubs, statsdSubs float64
	}
	var got seen
	want := seen{summaryCount: 3, gauge: 0.3, forwarderSubs: forwarderSubmits, statsdSubs: statsdSubmits}
	var fams map[string]*dto.MetricFamily
	e2etest.Eventually(t, 20*time.Second, func() bool {
		if fams, err = e2etest.Scrape(t, url); err != nil {
			return false
		}
		got = seen{}
		if f := fams["anvil_agreement_low_score_value"]; f.GetType() == dto.MetricType_SUMMARY {
			for _, m := range f.GetMetric() {
				got.summaryCount += m.GetSummary().GetSampleCount()
			}
		}
		if f := fams["statsd_anvil_agreement_low_score_value"]; f.GetType() == dto.MetricType_GAUGE && len(f.GetMetric()) == 1 {
			got.gauge = f.GetMetric()[0].GetGauge().GetValue()
		}
		for _, m := range fams["anvil_label_submit_count_total"].GetMetric() {
			got.forwarderSubs += m.GetCounter().GetValue()
		}
		for _, m := range fams["statsd_anvil_label_submit_count_total"].GetMetric() {
			got.statsdSubs += m.GetCounter().GetValue()
		}
		return got == want
	}, "at Prometheus: %+v, want %+v", &got, want)

	// Each family holds only its own source: the forwarder's series name
	// their writer, StatsD's carry the statsd receiver's scope.
	for name, scope := range map[string]string{
		"anvil_agreement_low_score_value":        "anvilreceiver",
		"anvil_label_submit_count_total":         "anvilreceiver",
		"statsd_anvil_agreement_low_score_value": "statsdreceiver",
		"statsd_anvil_label_submit_count_total":  "statsdreceiver",
	} {
		for _, m := range fams[name].GetMetric() {
			var s string
			for _, l := range m.GetLabel() {
				if l.GetName() == "otel_scope_name" {
					s = l.GetValue()
				}
			}
			if !strings.HasSuffix(s, "/"+scope) {
				t.Errorf("%s{%s}: from scope %q, want only the %s's", name, e2etest.Labels(m), s, scope)
			}
		}
	}

	// Every scrape above ran the exporter's conversion of both sources; one
	// more after the last flush, then stop, so the log is complete.
	if _, err := e2etest.Scrape(t, url); err != nil {
		t.Fatal(err)
	}
	if err := c.Stop(); err != nil {
		t.Fatalf("anvilcol did not shut down cleanly: %v", err)
	}
	for _, msg := range prometheusConflictLogs {
		if strings.Contains(c.Output(), msg) {
			t.Errorf("the collector logged %q: two sources share a metric name", msg)
		}
	}
}

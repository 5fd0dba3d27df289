//go:build e2e

package e2e

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/pmetric/pmetricotlp"

	"github.com/anvil/anvilcol/internal/e2etest"
)

// cardinalityGuardConfig: OTLP/HTTP in, cardinality_guard (ADR-008 defaults,
// plus a one-series cap on one metric), OTLP/HTTP out to the sink.
func cardinalityGuardConfig(health, otlpHTTP, telemetry int, sinkURL string) string {
	return fmt.Sprintf(`
extensions:
  health_check:
    endpoint: 127.0.0.1:%d
receivers:
  otlp:
    protocols:
      http:
        endpoint: 127.0.0.1:%d
processors:
  cardinality_guard:
    metrics:
      anvil.assignment.completed.count:
        max_series: 1
  batch:
    timeout: 200ms
exporters:
  otlp_http:
    endpoint: %s
service:
  extensions: [health_check]
%s  pipelines:
    metrics:
      receivers: [otlp]
      processors: [cardinality_guard, batch]
      exporters: [otlp_http]
`, health, otlpHTTP, sinkURL, e2etest.TelemetryYAML(telemetry))
}

// cardinalityCounter is one labeler's cumulative counter as Anvil sends it.
type cardinalityCounter struct {
	metric, queue, labeler string
	value                  int64
	start                  int64 // seconds
}

func postCardinalityMetrics(t *testing.T, url string, ts int64, counters []cardinalityCounter) {
	t.Helper()
	md := pmetric.NewMetrics()
	rm := md.ResourceMetrics().AppendEmpty()
	rm.Resource().Attributes().PutStr("service.name", "anvil")
	rm.Resource().Attributes().PutStr("host.name", "node-1")
	ms := rm.ScopeMetrics().AppendEmpty().Metrics()
	byMetric := map[string]pmetric.Sum{}
	for _, c := range counters {
		sum, ok := byMetric[c.metric]
		if !ok {
			m := ms.AppendEmpty()
			m.SetName(c.metric)
			sum = m.SetEmptySum()
			sum.SetIsMonotonic(true)
			sum.SetAggregationTemporality(pmetric.AggregationTemporalityCumulative)
			byMetric[c.metric] = sum
		}
		dp := sum.DataPoints().AppendEmpty()
		dp.Attributes().PutStr("queue_id", c.queue)
		dp.Attributes().PutStr("labeler_id", c.labeler)
		dp.SetStartTimestamp(pcommon.Timestamp(c.start * int64(time.Second)))
		dp.SetTimestamp(pcommon.Timestamp(ts * int64(time.Second)))
		dp.SetIntValue(c.value)
	}
	body, err := pmetricotlp.NewExportRequestFromMetrics(md).MarshalProto()
	if err != nil {
		t.Fatal(err)
	}
	req, err := http.NewRequestWithContext(context.Background(), http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-protobuf")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("OTLP POST: HTTP %d", resp.StatusCode)
	}
}

// latestCardinalityPoints returns, per "metric|attributes", the value of the
// newest point the sink received, and fails on a point carrying labeler_id.
func latestCardinalityPoints(t *testing.T, sink *e2etest.OTLPSink) (map[string]int64, map[string]int64) {
	t.Helper()
	values, times := map[string]int64{}, map[string]int64{}
	for _, md := range sink.Metrics() {
		for i := 0; i < md.ResourceMetrics().Len(); i++ {
			sms := md.ResourceMetrics().At(i).ScopeMetrics()
			for j := 0; j < sms.Len(); j++ {
				ms := sms.At(j).Metrics()
				for k := 0; k < ms.Len(); k++ {
					m := ms.At(k)
					if m.Type() != pmetric.MetricTypeSum {
						continue
					}
					dps := m.Sum().DataPoints()
					for l := 0; l < dps.Len(); l++ {
						dp := dps.At(l)
						if _, ok := dp.Attributes().Get("labeler_id"); ok {
							t.Fatalf("%s: labeler_id reached the backend: %v", m.Name(), dp.Attributes().AsRaw())
						}
						if m.Sum().AggregationTemporality() != pmetric.AggregationTemporalityCumulative {
							t.Fatalf("%s: temporality changed", m.Name())
						}
						var parts []string
						for key, v := range dp.Attributes().All() {
							parts = append(parts, key+"="+v.AsString())
						}
						sort.Strings(parts)
						id := m.Name() + "|" + strings.Join(parts, ",")
						if ts := int64(dp.Timestamp()); ts >= times[id] {
							if prev, ok := values[id]; ok && dp.IntValue() < prev {
								t.Fatalf("%s went backwards: %d -> %d (a reset the backend would misread)", id, prev, dp.IntValue())
							}
							times[id], values[id] = ts, dp.IntValue()
						}
					}
				}
			}
		}
	}
	return values, times
}

func TestCardinalityGuardDropsLabelerIDAndKeepsTotals(t *testing.T) {
	sink := e2etest.NewOTLPSink(t)
	health, otlpHTTP, telemetry := e2etest.FreePort(t), e2etest.FreePort(t), e2etest.FreePort(t)
	e2etest.Start(t, e2etest.Options{
		ConfigYAML: cardinalityGuardConfig(health, otlpHTTP, telemetry, sink.URL),
		HealthPort: health,
	})
	url := fmt.Sprintf("http://127.0.0.1:%d/v1/metrics", otlpHTTP)
	const submits, completed = "anvil.label.submit.count", "anvil.assignment.completed.count"

	// Round 1: 5 labelers in each of 3 queues.
	var round1 []cardinalityCounter
	for q := 1; q <= 3; q++ {
		for l := 1; l <= 5; l++ {
			round1 = append(round1,
				cardinalityCounter{submits, fmt.Sprint("q", q), fmt.Sprint("labeler-", l), int64(q*10 + l), 100},
				cardinalityCounter{completed, fmt.Sprint("q", q), fmt.Sprint("labeler-", l), int64(q + l), 100})
		}
	}
	postCardinalityMetrics(t, url, 200, round1)

	// Round 2: labelers 1-3 count on, labeler-2 of q2 restarted (new start,
	// low value), labeler-6 joins q1; labelers 4-5 are silent.
	var round2 []cardinalityCounter
	for q := 1; q <= 3; q++ {
		for l := 1; l <= 3; l++ {
			c := cardinalityCounter{submits, fmt.Sprint("q", q), fmt.Sprint("labeler-", l), int64(q*10+l) + 100, 100}
			if q == 2 && l == 2 {
				c.value, c.start = 4, 250
			}
			round2 = append(round2, c, cardinalityCounter{completed, fmt.Sprint("q", q), fmt.Sprint("labeler-", l), int64(q+l) + 1, 100})
		}
	}
	round2 = append(round2, cardinalityCounter{submits, "q1", "labeler-6", 7, 150})
	postCardinalityMetrics(t, url, 300, round2)

	// Expected: per output series, the sum of every increase its inputs showed
	// (a restarted input's new count adds on top; it never shows as a reset).
	want := map[string]int64{}
	last := map[string]int64{}
	book := func(round []cardinalityCounter, series func(cardinalityCounter) string) {
		for _, c := range round {
			in := c.metric + c.queue + c.labeler
			inc := c.value
			if prev, ok := last[in]; ok && c.value >= prev {
				inc = c.value - prev
			}
			last[in] = c.value
			want[series(c)] += inc
		}
	}
	series := func(c cardinalityCounter) string {
		if c.metric == completed && c.queue != "q1" {
			return completed + "|otel.metric.overflow=true" // max_series: 1
		}
		return c.metric + "|queue_id=" + c.queue
	}
	book(round1, series)
	book(round2, series)

	var got map[string]int64
	e2etest.Eventually(t, 20*time.Second, func() bool {
		var times map[string]int64
		got, times = latestCardinalityPoints(t, sink)
		for id := range want {
			if times[id] != 300*int64(time.Second) {
				return false
			}
		}
		return true
	}, "round 2 did not reach the sink")
	if len(got) != len(want) {
		t.Errorf("output series: got %v, want %v", got, want)
	}
	for id, v := range want {
		if got[id] != v {
			t.Errorf("%s: got %d, want %d", id, got[id], v)
		}
	}
	// Totals equal: the sum of every labeler's latest counter, plus what the
	// restarted labeler (q2 labeler-2) had counted before its restart.
	latest := map[string]int64{}
	for _, c := range append(round1, round2...) {
		if c.metric == submits {
			latest[c.queue+c.labeler] = c.value
		}
	}
	inTotal := int64(2*10 + 2) // labeler-2 of q2 before the restart
	for _, v := range latest {
		inTotal += v
	}
	var outTotal int64
	for id, v := range got {
		if strings.HasPrefix(id, submits) {
			outTotal += v
		}
	}
	if inTotal != outTotal {
		t.Errorf("%s total: in %d, out %d", submits, inTotal, outTotal)
	}

	// Own telemetry: attributes dropped, points folded into overflow, active series per metric.
	families, err := e2etest.Scrape(t, fmt.Sprintf("http://127.0.0.1:%d/metrics", telemetry))
	if err != nil {
		t.Fatal(err)
	}
	family := func(name string) *dto.MetricFamily { // with or without the _total suffix
		if f := families[name]; f != nil {
			return f
		}
		return families[name+"_total"]
	}
	// Overflow: completed points of q2 and q3 (5+5 in round 1, 3+3 in round 2);
	// each loses both attributes, every other point loses labeler_id.
	const overflowPoints = 16
	wantDropped := len(round1) + len(round2) + overflowPoints
	dropped := family("otelcol_cardinality_guard_attributes_dropped")
	if dropped == nil || dropped.GetMetric()[0].GetCounter().GetValue() != float64(wantDropped) {
		t.Errorf("attributes_dropped: got %v, want %d", dropped, wantDropped)
	}
	overflow := family("otelcol_cardinality_guard_overflow_points")
	if overflow == nil || overflow.GetMetric()[0].GetCounter().GetValue() != overflowPoints {
		t.Errorf("overflow_points: got %v, want %d", overflow, overflowPoints)
	}
	active := family("otelcol_cardinality_guard_active_series")
	if active == nil {
		t.Fatal("no otelcol_cardinality_guard_active_series")
	}
	perMetric := map[string]float64{}
	for _, m := range active.GetMetric() {
		for _, l := range m.GetLabel() {
			if l.GetName() == "metric" {
				perMetric[l.GetValue()] = m.GetGauge().GetValue() + m.GetCounter().GetValue() + m.GetUntyped().GetValue()
			}
		}
	}
	if perMetric[submits] != 3 || perMetric[completed] != 2 {
		t.Errorf("active series per metric: got %v, want %s=3 %s=2", perMetric, submits, completed)
	}
}

// A per-metric allowed_attributes naming labeler_id, which the global
// drop_attributes (the ADR-008 default) drops, is accepted and wins for that
// metric only: its points keep labeler_id, every other metric's lose it.
func TestCardinalityGuardAllowlistWinsOverDropList(t *testing.T) {
	sink := e2etest.NewOTLPSink(t)
	health, otlpHTTP, telemetry := e2etest.FreePort(t), e2etest.FreePort(t), e2etest.FreePort(t)
	cfg := strings.Replace(cardinalityGuardConfig(health, otlpHTTP, telemetry, sink.URL),
		"    metrics:\n", "    metrics:\n      anvil.label.submit.count:\n        allowed_attributes: [queue_id, labeler_id]\n", 1)
	e2etest.Start(t, e2etest.Options{ConfigYAML: cfg, HealthPort: health})
	url := fmt.Sprintf("http://127.0.0.1:%d/v1/metrics", otlpHTTP)
	const submits, completed = "anvil.label.submit.count", "anvil.assignment.completed.count"
	postCardinalityMetrics(t, url, 200, []cardinalityCounter{
		{submits, "q1", "labeler-1", 3, 100}, {submits, "q1", "labeler-2", 4, 100},
		{completed, "q1", "labeler-1", 1, 100}, {completed, "q1", "labeler-2", 2, 100},
	})
	// series "metric|labeler" -> latest value
	got := map[string]int64{}
	e2etest.Eventually(t, 20*time.Second, func() bool {
		for _, md := range sink.Metrics() {
			for i := 0; i < md.ResourceMetrics().Len(); i++ {
				sms := md.ResourceMetrics().At(i).ScopeMetrics()
				for j := 0; j < sms.Len(); j++ {
					ms := sms.At(j).Metrics()
					for k := 0; k < ms.Len(); k++ {
						m := ms.At(k)
						for l := 0; l < m.Sum().DataPoints().Len(); l++ {
							dp := m.Sum().DataPoints().At(l)
							lab := ""
							if v, ok := dp.Attributes().Get("labeler_id"); ok {
								lab = v.Str()
							}
							got[m.Name()+"|"+lab] = dp.IntValue()
						}
					}
				}
			}
		}
		return len(got) >= 3
	}, "the points did not reach the sink")
	want := map[string]int64{submits + "|labeler-1": 3, submits + "|labeler-2": 4, completed + "|": 3}
	if len(got) != len(want) {
		t.Fatalf("series: got %v, want %v", got, want)
	}
	for id, v := range want {
		if got[id] != v {
			t.Errorf("%s: got %d, want %d (all: %v)", id, got[id], v, got)
		}
	}
}

package foundationexporter

import (
	"context"
	"encoding/json"
	"math"
	"net/http"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/collector/config/configauth"
	"go.opentelemetry.io/collector/config/configcompression"
	"go.opentelemetry.io/collector/config/configopaque"
	"go.opentelemetry.io/collector/config/configoptional"
	"go.opentelemetry.io/collector/consumer/consumererror"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.uber.org/zap"

	"github.com/anvil/anvilcol/internal/componenttesthelp"
	"github.com/anvil/anvilcol/internal/durabletest"
	"github.com/anvil/anvilcol/internal/e2etest"
)

const ts = pcommon.Timestamp(1_700_000_000_123_456_789) // -> 1700000000123 ms

// allKinds builds one data point of every metric kind the exporter maps.
func allKinds() pmetric.Metrics {
	md := pmetric.NewMetrics()
	rm := md.ResourceMetrics().AppendEmpty()
	ra := rm.Resource().Attributes()
	ra.PutStr("service.name", "anvil")
	ra.PutStr("tenant_id", "acme")
	ra.PutStr("deployment.environment", "prod") // not in resource_tags: not a tag
	ms := rm.ScopeMetrics().AppendEmpty().Metrics()

	m := ms.AppendEmpty()
	m.SetName("anvil.label.submit.count")
	s := m.SetEmptySum()
	s.SetIsMonotonic(true)
	s.SetAggregationTemporality(pmetric.AggregationTemporalityDelta)
	dp := s.DataPoints().AppendEmpty()
	dp.SetIntValue(5)
	dp.SetTimestamp(ts)
	dp.Attributes().PutStr("queue_id", "q1")
	dp.Attributes().PutStr("tenant_id", "point-wins")

	m = ms.AppendEmpty()
	m.SetName("anvil.export.bytes")
	s = m.SetEmptySum()
	s.SetIsMonotonic(true)
	s.SetAggregationTemporality(pmetric.AggregationTemporalityCumulative)
	dp = s.DataPoints().AppendEmpty()
	dp.SetDoubleValue(2.5)
	dp.SetTimestamp(ts)

	m = ms.AppendEmpty()
	m.SetName("anvil.queue.depth")
	s = m.SetEmptySum() // up-down counter, cumulative: a level
	s.SetAggregationTemporality(pmetric.AggregationTemporalityCumulative)
	dp = s.DataPoints().AppendEmpty()
	dp.SetIntValue(-3)
	dp.SetTimestamp(ts)

	m = ms.AppendEmpty()
	m.SetName("anvil.agreement.score")
	dp = m.SetEmptyGauge().DataPoints().AppendEmpty()
	dp.SetDoubleValue(0.75)
	dp.SetTimestamp(ts)
	dp.Attributes().PutBool("requeued", true)
	dp.Attributes().PutInt("dimension", 3)

	m = ms.AppendEmpty()
	m.SetName("anvil.label.submit.duration")
	h := m.SetEmptyHistogram()
	h.SetAggregationTemporality(pmetric.AggregationTemporalityDelta)
	hp := h.DataPoints().AppendEmpty()
	hp.SetTimestamp(ts)
	hp.SetCount(6)
	hp.SetSum(321.5)
	hp.SetMin(1)
	hp.SetMax(500)
	hp.ExplicitBounds().FromRaw([]float64{10, 100})
	hp.BucketCounts().FromRaw([]uint64{1, 2, 3})

	m = ms.AppendEmpty()
	m.SetName("anvil.policy.latency")
	eh := m.SetEmptyExponentialHistogram()
	eh.SetAggregationTemporality(pmetric.AggregationTemporalityCumulative)
	ep := eh.DataPoints().AppendEmpty()
	ep.SetTimestamp(ts)
	ep.SetScale(0) // base 2
	ep.SetCount(10)
	ep.SetSum(1)
	ep.SetZeroCount(4)
	ep.Positive().SetOffset(0)
	ep.Positive().BucketCounts().FromRaw([]uint64{1, 2}) // (1,2], (2,4]
	ep.Negative().SetOffset(1)
	ep.Negative().BucketCounts().FromRaw([]uint64{3}) // [-4,-2)

	m = ms.AppendEmpty()
	m.SetName("anvil.export.rows")
	sp := m.SetEmptySummary().DataPoints().AppendEmpty()
	sp.SetTimestamp(ts)
	sp.SetCount(3)
	sp.SetSum(6)
	q := sp.QuantileValues().AppendEmpty()
	q.SetQuantile(0.5)
	q.SetValue(2)
	q = sp.QuantileValues().AppendEmpty()
	q.SetQuantile(0.99)
	q.SetValue(3)

	m = ms.AppendEmpty()
	m.SetName("anvil.broken")
	dp = m.SetEmptyGauge().DataPoints().AppendEmpty()
	dp.SetDoubleValue(math.NaN()) // no JSON representation: dropped, counted
	return md
}

func TestRecordsCarryEveryDocumentedField(t *testing.T) {
	f := newFakeFoundation(t)
	cfg := testConfig(f.URL)
	cfg.MetricPrefix = "nsai."
	exp := startExporter(t, cfg, nil)
	if err := exp.ConsumeMetrics(context.Background(), allKinds()); err != nil {
		t.Fatal(err)
	}
	reqs := f.requests()
	if len(reqs) != 1 {
		t.Fatalf("got %d requests, want 1", len(reqs))
	}
	if reqs[0].Path != "/v1/metrics" {
		t.Errorf("path = %q, want /v1/metrics", reqs[0].Path)
	}
	if ct := reqs[0].Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type = %q", ct)
	}
	const ms = 1700000000123.0
	res := map[string]any{"service.name": "anvil", "tenant_id": "acme"}
	want := []map[string]any{
		{"metric_name": "nsai.anvil.label.submit.count", "type": "counter", "value": 5.0, "temporality": "delta",
			"tags": map[string]any{"queue_id": "q1", "tenant_id": "point-wins", "service.name": "anvil"}, "timestamp": ms},
		{"metric_name": "nsai.anvil.export.bytes", "type": "counter", "value": 2.5, "temporality": "cumulative", "tags": res, "timestamp": ms},
		{"metric_name": "nsai.anvil.queue.depth", "type": "gauge", "value": -3.0, "tags": res, "timestamp": ms},
		{"metric_name": "nsai.anvil.agreement.score", "type": "gauge", "value": 0.75,
			"tags": map[string]any{"requeued": "true", "dimension": "3", "service.name": "anvil", "tenant_id": "acme"}, "timestamp": ms},
		{"metric_name": "nsai.anvil.label.submit.duration", "type": "distribution", "temporality": "delta", "tags": res, "timestamp": ms,
			"count": 6.0, "sum": 321.5, "min": 1.0, "max": 500.0, "buckets": []any{
				map[string]any{"le": 10.0, "count": 1.0}, map[string]any{"le": 100.0, "count": 2.0}, map[string]any{"le": "+Inf", "count": 3.0}}},
		{"metric_name": "nsai.anvil.policy.latency", "type": "distribution", "temporality": "cumulative", "tags": res, "timestamp": ms,
			"count": 10.0, "sum": 1.0, "buckets": []any{
				map[string]any{"le": -2.0, "count": 3.0}, map[string]any{"le": 0.0, "count": 4.0},
				map[string]any{"le": 2.0, "count": 1.0}, map[string]any{"le": 4.0, "count": 2.0},
				map[string]any{"le": "+Inf", "count": 0.0}}},
		{"metric_name": "nsai.anvil.export.rows", "type": "summary", "tags": res, "timestamp": ms,
			"count": 3.0, "sum": 6.0, "quantiles": map[string]any{"0.5": 2.0, "0.99": 3.0}},
	}
	got := reqs[0].records
	if len(got) != len(want) {
		t.Fatalf("got %d records, want %d: %v", len(got), len(want), got)
	}
	for i := range want {
		if !reflect.DeepEqual(got[i], want[i]) {
			g, _ := json.Marshal(got[i])
			w, _ := json.Marshal(want[i])
			t.Errorf("record %d:\n got %s\nwant %s", i, g, w)
		}
	}
	if n := exp.tel.Counter(t, "otelcol_foundation_records_dropped", "reason", "invalid"); n != 1 {
		t.Errorf("records_dropped{reason=invalid} = %d, want 1 (the NaN gauge)", n)
	}
	if n := exp.tel.Counter(t, "otelcol_foundation_records_sent"); n != 7 {
		t.Errorf("records_sent = %d, want 7", n)
	}
	if n := exp.tel.Logs.FilterMessageSnippet("no JSON representation").FilterField(zap.String("first_metric", "anvil.broken")).Len(); n != 1 {
		t.Errorf("invalid point logged %d times with its metric name, want 1", n)
	}
}

func TestTimestampFallsBackToExportTime(t *testing.T) {
	f := newFakeFoundation(t)
	exp := startExporter(t, testConfig(f.URL), nil)
	md := gauges("g", 1)
	md.ResourceMetrics().At(0).ScopeMetrics().At(0).Metrics().At(0).Gauge().DataPoints().At(0).SetTimestamp(0)
	before := time.Now().UnixMilli()
	if err := exp.ConsumeMetrics(context.Background(), md); err != nil {
		t.Fatal(err)
	}
	got := int64(f.requests()[0].records[0]["timestamp"].(float64))
	if got < before || got > time.Now().UnixMilli() {
		t.Errorf("timestamp %d not within the export time", got)
	}
}

func TestMaxBatchPointsBoundsEachRequest(t *testing.T) {
	f := newFakeFoundation(t)
	exp := startExporter(t, testConfig(f.URL), nil) // default 1000
	if err := exp.ConsumeMetrics(context.Background(), gauges("g", 2500)); err != nil {
		t.Fatal(err)
	}
	var sizes []int
	seen := map[float64]bool{}
	for _, r := range f.requests() {
		sizes = append(sizes, len(r.records))
		for _, rec := range r.records {
			seen[rec["value"].(float64)] = true
		}
	}
	if !reflect.DeepEqual(sizes, []int{1000, 1000, 500}) || len(seen) != 2500 {
		t.Fatalf("request sizes %v, distinct points %d; want [1000 1000 500], 2500", sizes, len(seen))
	}
}

func TestGzipIsTheDefaultAndCanBeTurnedOff(t *testing.T) {
	for _, tc := range []struct {
		compression configcompression.Type
		gzipped     bool
	}{{configcompression.TypeGzip, true}, {"", false}} {
		f := newFakeFoundation(t)
		cfg := testConfig(f.URL)
		if tc.compression == "" {
			cfg.ClientConfig.Compression = ""
		} else if cfg.ClientConfig.Compression != tc.compression {
			t.Fatalf("default compression = %q, want gzip", cfg.ClientConfig.Compression)
		}
		exp := startExporter(t, cfg, nil)
		if err := exp.ConsumeMetrics(context.Background(), gauges("g", 3)); err != nil {
			t.Fatal(err)
		}
		r := f.requests()[0]
		if r.gzipped != tc.gzipped || len(r.records) != 3 {
			t.Errorf("compression %q: gzipped=%v records=%d", tc.compression, r.gzipped, len(r.records))
		}
	}
}

func TestAuthViaHeaders(t *testing.T) {
	f := newFakeFoundation(t)
	cfg := testConfig(f.URL)
	cfg.ClientConfig.Headers = configopaque.MapList{{Name: "X-Api-Key", Value: "k-123"}}
	exp := startExporter(t, cfg, nil)
	if err := exp.ConsumeMetrics(context.Background(), gauges("g", 1)); err != nil {
		t.Fatal(err)
	}
	if got := f.requests()[0].Header.Get("X-Api-Key"); got != "k-123" {
		t.Errorf("X-Api-Key = %q", got)
	}
}

func TestAuthViaBearerTokenExtension(t *testing.T) {
	f := newFakeFoundation(t)
	f.answer(func(r received) (int, http.Header, string) {
		if r.Header.Get("Authorization") != "Bearer s3cret" {
			return http.StatusUnauthorized, nil, `{"error":"bad token"}`
		}
		return http.StatusOK, nil, "{}"
	})
	host := componenttesthelp.StartBearerTokenAuth(t, "s3cret")
	cfg := testConfig(f.URL)
	cfg.ClientConfig.Auth = configoptional.Some(configauth.Config{AuthenticatorID: componenttesthelp.BearerTokenAuthID})
	exp := startExporter(t, cfg, host)
	if err := exp.ConsumeMetrics(context.Background(), gauges("g", 2)); err != nil {
		t.Fatalf("export with bearer token: %v", err)
	}
	if n := f.recordCount(); n != 2 {
		t.Errorf("records = %d", n)
	}
}

func TestRetryableStatusesAreRetriedHonouringRetryAfter(t *testing.T) {
	for _, code := range []int{408, 429, 500, 502, 503, 504} {
		t.Run(strconv.Itoa(code), func(t *testing.T) {
			t.Parallel()
			f := newFakeFoundation(t)
			var firstAt, secondAt time.Time
			f.answer(func(r received) (int, http.Header, string) {
				if r.Seq == 1 {
					firstAt = time.Now()
					return code, http.Header{"Retry-After": {"1"}}, "busy"
				}
				secondAt = time.Now()
				return http.StatusOK, nil, "{}"
			})
			exp := startExporter(t, testConfig(f.URL), nil)
			if err := exp.ConsumeMetrics(context.Background(), gauges("g", 4)); err != nil {
				t.Fatalf("%d: %v", code, err)
			}
			reqs := f.requests()
			if len(reqs) != 2 || len(reqs[1].records) != 4 {
				t.Fatalf("%d: %d requests", code, len(reqs))
			}
			if d := secondAt.Sub(firstAt); d < 900*time.Millisecond {
				t.Errorf("%d: retried after %v, want >= Retry-After 1s", code, d)
			}
			if n := exp.tel.Counter(t, "otelcol_foundation_requests", "outcome", "retryable"); n != 1 {
				t.Errorf("%d: requests{outcome=retryable} = %d", code, n)
			}
		})
	}
}

func TestNetworkErrorsAreRetried(t *testing.T) {
	addr := durabletest.ReserveAddr(t)
	exp := startExporter(t, testConfig("http://"+addr), nil)
	in := new(e2etest.Intake)
	f := foundationOn(in)
	durabletest.UpWhen(t, addr, in, func() bool {
		return exp.tel.Counter(t, "otelcol_foundation_requests", "outcome", "network_error") >= 1
	})
	if err := exp.ConsumeMetrics(context.Background(), gauges("g", 3)); err != nil {
		t.Fatal(err)
	}
	if n := f.recordCount(); n != 3 {
		t.Errorf("records = %d after the endpoint came up", n)
	}
	if n := exp.tel.Counter(t, "otelcol_foundation_requests", "outcome", "network_error"); n < 1 {
		t.Errorf("requests{outcome=network_error} = %d", n)
	}
}

func TestRetryResendsOnlyUnacknowledgedPoints(t *testing.T) {
	f := newFakeFoundation(t)
	f.answer(func(r received) (int, http.Header, string) {
		if r.Seq == 2 {
			return http.StatusServiceUnavailable, nil, "later"
		}
		return http.StatusOK, nil, "{}"
	})
	cfg := testConfig(f.URL)
	cfg.MaxBatchPoints = 10
	exp := startExporter(t, cfg, nil)
	if err := exp.ConsumeMetrics(context.Background(), gauges("g", 30)); err != nil {
		t.Fatal(err)
	}
	count := map[float64]int{}
	for _, r := range f.requests() {
		if r.Seq == 2 {
			continue // answered 503
		}
		for _, rec := range r.records {
			count[rec["value"].(float64)]++
		}
	}
	for i := 0; i < 30; i++ {
		if count[float64(i)] != 1 {
			t.Errorf("point %d delivered %d times", i, count[float64(i)])
		}
	}
}

func TestTooLargeSplitsTheRequestInHalves(t *testing.T) {
	f := newFakeFoundation(t)
	f.answer(func(r received) (int, http.Header, string) {
		if len(r.records) > 3 {
			return http.StatusRequestEntityTooLarge, nil, "too big"
		}
		return http.StatusOK, nil, "{}"
	})
	exp := startExporter(t, testConfig(f.URL), nil)
	if err := exp.ConsumeMetrics(context.Background(), gauges("g", 10)); err != nil {
		t.Fatal(err)
	}
	var sizes []int
	delivered := map[float64]int{}
	for _, r := range f.requests() {
		sizes = append(sizes, len(r.records))
		if len(r.records) <= 3 {
			for _, rec := range r.records {
				delivered[rec["value"].(float64)]++
			}
		}
	}
	// 10 -> 413; 5 -> 413; 2, 3; 5 -> 413; 2, 3
	if !reflect.DeepEqual(sizes, []int{10, 5, 2, 3, 5, 2, 3}) || len(delivered) != 10 {
		t.Fatalf("request sizes %v, delivered %d distinct points", sizes, len(delivered))
	}
	if n := exp.tel.Counter(t, "otelcol_foundation_requests", "outcome", "too_large"); n != 3 {
		t.Errorf("requests{outcome=too_large} = %d, want 3", n)
	}
}

func TestOther4xxArePermanentCountedAndLoggedOnce(t *testing.T) {
	f := newFakeFoundation(t)
	long := `{"error":"unknown tenant"}` + strings.Repeat(".", 1000)
	f.answer(func(received) (int, http.Header, string) { return http.StatusBadRequest, nil, long })
	exp := startExporter(t, testConfig(f.URL), nil)
	for i := 0; i < 3; i++ {
		err := exp.ConsumeMetrics(context.Background(), gauges("g", 4))
		if !consumererror.IsPermanent(err) {
			t.Fatalf("err = %v, want permanent", err)
		}
	}
	if n := len(f.requests()); n != 3 {
		t.Errorf("%d requests: a permanent failure must not be retried", n)
	}
	if n := exp.tel.Counter(t, "otelcol_foundation_records_dropped", "reason", "rejected"); n != 12 {
		t.Errorf("records_dropped{reason=rejected} = %d, want 12", n)
	}
	logged := exp.tel.Logs.FilterMessageSnippet("refused records permanently").All()
	if len(logged) != 1 {
		t.Fatalf("rejection logged %d times, want once", len(logged))
	}
	body := logged[0].ContextMap()["response_body"].(string)
	if len(body) != 512 || !strings.HasPrefix(body, `{"error":"unknown tenant"}`) {
		t.Errorf("logged body has %d bytes: %.40q", len(body), body)
	}
	if logged[0].ContextMap()["status"] != int64(400) {
		t.Errorf("logged status = %v", logged[0].ContextMap()["status"])
	}
}

func TestSuccessStatusesAreAll2xx(t *testing.T) {
	for _, code := range []int{200, 201, 202, 204} {
		f := newFakeFoundation(t)
		f.answer(func(received) (int, http.Header, string) { return code, nil, "" })
		exp := startExporter(t, testConfig(f.URL), nil)
		if err := exp.ConsumeMetrics(context.Background(), gauges("g", 1)); err != nil {
			t.Errorf("%d: %v", code, err)
		}
		if len(f.requests()) != 1 {
			t.Errorf("%d: %d requests", code, len(f.requests()))
		}
	}
}

package anvilreceiver

import (
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.opentelemetry.io/otel/sdk/metric/metricdata/metricdatatest"

	"github.com/anvil/anvilcol/internal/timeunit"
	"github.com/anvil/anvilcol/receiver/anvilreceiver/internal/metadatatest"
)

// points flattens metrics into "name{k=v,...}" -> the data point, for assertions.
type point struct {
	typ       pmetric.MetricType
	unit      string
	monotonic bool
	temporal  pmetric.AggregationTemporality
	intValue  int64
	value     float64
	count     uint64
	sum       float64
	buckets   []uint64
	bounds    []float64
	quantiles map[float64]float64
	start, ts pcommon.Timestamp
	expo      pmetric.ExponentialHistogramDataPoint
}

func seriesName(name string, attrs pcommon.Map) string {
	var kv []string
	for k, v := range attrs.All() {
		kv = append(kv, k+"="+v.AsString())
	}
	sort.Strings(kv)
	return name + "{" + strings.Join(kv, ",") + "}"
}

func points(md pmetric.Metrics) map[string]point {
	out := map[string]point{}
	for i := range md.ResourceMetrics().Len() {
		sms := md.ResourceMetrics().At(i).ScopeMetrics()
		for j := range sms.Len() {
			ms := sms.At(j).Metrics()
			for k := range ms.Len() {
				m := ms.At(k)
				switch m.Type() {
				case pmetric.MetricTypeSum:
					for _, dp := range m.Sum().DataPoints().All() {
						out[seriesName(m.Name(), dp.Attributes())] = point{typ: m.Type(), unit: m.Unit(), monotonic: m.Sum().IsMonotonic(),
							temporal: m.Sum().AggregationTemporality(), intValue: dp.IntValue(), value: dp.DoubleValue(),
							start: dp.StartTimestamp(), ts: dp.Timestamp()}
					}
				case pmetric.MetricTypeGauge:
					for _, dp := range m.Gauge().DataPoints().All() {
						out[seriesName(m.Name(), dp.Attributes())] = point{typ: m.Type(), unit: m.Unit(), value: dp.DoubleValue(), ts: dp.Timestamp()}
					}
				case pmetric.MetricTypeHistogram:
					for _, dp := range m.Histogram().DataPoints().All() {
						out[seriesName(m.Name(), dp.Attributes())] = point{typ: m.Type(), unit: m.Unit(), temporal: m.Histogram().AggregationTemporality(),
							count: dp.Count(), sum: dp.Sum(), buckets: dp.BucketCounts().AsRaw(), bounds: dp.ExplicitBounds().AsRaw(),
							start: dp.StartTimestamp(), ts: dp.Timestamp()}
					}
				case pmetric.MetricTypeSummary:
					for _, dp := range m.Summary().DataPoints().All() {
						q := map[float64]float64{}
						for _, qv := range dp.QuantileValues().All() {
							q[qv.Quantile()] = qv.Value()
						}
						out[seriesName(m.Name(), dp.Attributes())] = point{typ: m.Type(), count: dp.Count(), sum: dp.Sum(), quantiles: q}
					}
				case pmetric.MetricTypeExponentialHistogram:
					for _, dp := range m.ExponentialHistogram().DataPoints().All() {
						out[seriesName(m.Name(), dp.Attributes())] = point{typ: m.Type(), count: dp.Count(), sum: dp.Sum(), expo: dp}
					}
				}
			}
		}
	}
	return out
}

// TestCatalogMetricsMatchAHandCount posts testdata/catalog_batch.json (the
// sample batch of config/examples as it was when these counts were made by
// hand; the shipped one may change, TestSampleBatchFeedsTheCatalog follows it)
// and checks every catalog metric against a hand count.
func TestCatalogMetricsMatchAHandCount(t *testing.T) {
	body, err := os.ReadFile(filepath.Join("testdata", "catalog_batch.json"))
	require.NoError(t, err)
	tr := startTestReceiver(t, nil)
	a := post(t, tr.url, contentTypeJSON, body)
	require.Equal(t, 200, a.code, a.raw)
	require.Equal(t, response{Accepted: 46, Errors: []eventError{}}, a.resp)
	assert.Equal(t, 46, tr.logs.LogRecordCount())
	assert.Equal(t, 15, tr.traces.SpanCount(), "15 stop/exception events")

	md := tr.flush()
	require.Len(t, md, 1)
	got := points(md[0])
	counters := map[string]int64{
		"anvil.queue.created.count{}":                                              2,
		"anvil.label.submit.count{queue_id=q-1,schema_version_id=sv-3}":            2,
		"anvil.label.validation_failed.count{queue_id=q-1,schema_version_id=sv-3}": 1,
		"anvil.label.submit.exception.count{queue_id=q-2}":                         1,
		"anvil.assignment.dispatch.exception.count{queue_id=q-2}":                  1,
		"anvil.agreement.compute.exception.count{metric=fleiss_kappa}":             1,
		"anvil.agreement.batch_recompute.exception.count{queue_id=q-2}":            1,
		"anvil.export.generate.exception.count{format=csv}":                        1,
		"anvil.policy.select_assignment.exception.count{policy_type=skill_match}":  1,
		"anvil.auth.login_success.count{provider=github}":                          1,
		"anvil.auth.login_failed.count{provider=github,reason=bad_password}":       2,
		"anvil.auth.access_denied.count{action=export,reason=not_member}":          1,
		"anvil.policy.requeue.count{reason=timeout}":                               1,
		"anvil.agreement.low_score.count{dimension=bbox}":                          2,
		"anvil.agreement.low_score.count{dimension=class}":                         1,
		"anvil.export.pii_detected.count{pattern=email}":                           2,
		"anvil.export.pii_detected.count{pattern=phone}":                           1,
	}
	for k, want := range counters {
		p, ok := got[k]
		if assert.True(t, ok, "missing %s", k) {
			assert.Equal(t, want, p.intValue, k)
			assert.True(t, p.monotonic, k)
			assert.Equal(t, pmetric.AggregationTemporalityCumulative, p.temporal, k)
		}
	}
	timedOut := got["anvil.assignment.timed_out.count{queue_id=q-1}"]
	assert.InDelta(t, 5.0, timedOut.value, 0, "3 + 2 timed-out assignments, not 2 sweeps")
	assert.True(t, timedOut.monotonic)

	hist := map[string]struct {
		unit    string
		count   uint64
		sum     float64
		buckets []uint64
	}{
		"anvil.assignment.dispatch.duration{policy_type=round_robin,queue_id=q-1}": {"ms", 1, 42, []uint64{0, 1, 0, 0, 0, 0, 0, 0, 0}},
		"anvil.assignment.dispatch.duration{policy_type=priority,queue_id=q-2}":    {"ms", 1, 120, []uint64{0, 0, 0, 1, 0, 0, 0, 0, 0}},
		"anvil.label.submit.duration{queue_id=q-1}":                                {"ms", 2, 330, []uint64{0, 1, 0, 0, 1, 0, 0, 0, 0, 0}},
		"anvil.agreement.compute.duration{metric=krippendorff_alpha}":              {"ms", 1, 20, []uint64{0, 1, 0, 0, 0, 0, 0, 0, 0, 0}},
		"anvil.agreement.compute.duration{metric=cohen_kappa}":                     {"ms", 1, 75, []uint64{0, 0, 0, 1, 0, 0, 0, 0, 0, 0}},
		"anvil.export.generate.duration{format=jsonl}":                             {"s", 1, 12.5, []uint64{0, 0, 0, 1, 0, 0, 0, 0, 0, 0}},
		"anvil.agreement.batch_recompute.duration{queue_id=q-1}":                   {"s", 1, 2, []uint64{0, 1, 0, 0, 0, 0, 0, 0, 0, 0}},
		"anvil.policy.select_assignment.duration{policy_type=round_robin}":         {"ms", 1, 1, []uint64{1, 0, 0, 0, 0, 0, 0, 0, 0, 0}},
		// 0.42 and 0.55; 0.31 lands in the bucket of the scores < 0.4.
		"anvil.agreement.low_score.distribution{dimension=bbox}":  {"", 2, 0.97, []uint64{0, 0, 0, 0, 1, 1, 0, 0, 0, 0, 0}},
		"anvil.agreement.low_score.distribution{dimension=class}": {"", 1, 0.31, []uint64{0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0}},
		// Every score a computation returned: 0.82 in (0.8, 0.85], 0.61 in (0.6, 0.65].
		"anvil.agreement.score{dimension=bbox,metric=krippendorff_alpha,queue_id=q-1}": {"", 1, 0.82, []uint64{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0}},
		"anvil.agreement.score{dimension=class,metric=cohen_kappa,queue_id=q-1}":       {"", 1, 0.61, []uint64{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0}},
	}
	for k, want := range hist {
		p, ok := got[k]
		if assert.True(t, ok, "missing %s", k) {
			assert.Equal(t, pmetric.MetricTypeHistogram, p.typ, k)
			assert.Equal(t, want.unit, p.unit, k)
			assert.Equal(t, want.count, p.count, k)
			assert.InDelta(t, want.sum, p.sum, 1e-9, k)
			assert.Equal(t, want.buckets, p.buckets, k)
		}
	}
	bbox := got["anvil.agreement.low_score.value{dimension=bbox}"]
	assert.Equal(t, uint64(2), bbox.count)
	assert.InDelta(t, 0.97, bbox.sum, 1e-9)
	assert.Equal(t, map[float64]float64{0.5: 0.42, 0.9: 0.55, 0.95: 0.55, 0.99: 0.55}, bbox.quantiles)
	assert.Equal(t, map[float64]float64{0.5: 0.31, 0.9: 0.31, 0.95: 0.31, 0.99: 0.31}, got["anvil.agreement.low_score.value{dimension=class}"].quantiles)
	assert.InDelta(t, 100.0, got["anvil.export.progress.progress_pct{export_id=e-1}"].value, 0, "last progress_pct of the export, read from metadata")
	assert.InDelta(t, 0.58, got["anvil.agreement.labeler.score{labeler_id=u-9,queue_id=q-1}"].value, 0, "a labeler's latest agreement, labeler_id kept")
	assert.InDelta(t, 5.0, got["anvil.queue.active_labelers.count{queue_id=q-1}"].value, 0, "the latest of 7 and 5")
	assert.InDelta(t, 42.0, got["anvil.queue.pending_assignments.count{queue_id=q-1}"].value, 0)
	assert.InDelta(t, 25.0, got["anvil.label.cost{queue_id=q-1}"].value, 0, "one submit with cost 25; the other has none")
	tot := got["anvil.label.time_on_task{queue_id=q-1,sample_type=image}"]
	assert.Equal(t, "s", tot.unit)
	assert.Equal(t, uint64(1), tot.count, "the submit without time_on_task is not a 0")
	assert.InDelta(t, 95.0, tot.sum, 1e-9, "95 s from the native unit (ns)")
	assert.Equal(t, []uint64{0, 0, 1, 0, 0, 0, 0, 0, 0}, tot.buckets)

	// Nothing else: no series for high-cardinality keys (but the capped
	// per-labeler score), no metric without an event.
	assert.Len(t, got, len(counters)+1+len(hist)+2+1+1+4)
	// A merging client's batch lacks no tag.
	_, err = tr.tel.GetMetric("otelcol_receiver_anvil_events_missing_attribute")
	assert.Error(t, err, "nothing counted as missing")
}

func newTestAggregator(t *testing.T, delta bool, ttl time.Duration, maxSeries int, cfgs ...MetricConfig) *aggregator {
	t.Helper()
	cfg := createDefaultConfig().(*Config)
	cfg.DefaultMetrics = false
	cfg.Metrics = cfgs
	require.NoError(t, cfg.Validate())
	return newAggregator(newMetricDefs(cfg.effectiveMetrics()), timeunit.Nanosecond, delta, ttl, maxSeries, time.Unix(1000, 0))
}

func ingest(a *aggregator, now time.Time, events ...decodedEvent) {
	var st stage
	for i := range events {
		if events[i].attrs == (pcommon.Map{}) {
			events[i].attrs = pcommon.NewMap()
		}
		a.stageEvent(&st, &events[i])
	}
	a.apply(&st, 0, func() pcommon.Map { return pcommon.NewMap() }, now)
}

func ev(name string, value float64, tags map[string]any) decodedEvent {
	m := pcommon.NewMap()
	_ = m.FromRaw(tags)
	return decodedEvent{name: name, measurements: []measurement{{key: "v", value: value}}, attrs: m}
}

func noScope(pmetric.ScopeMetrics) {}

func TestDeltaTemporalityResetsEachFlush(t *testing.T) {
	a := newTestAggregator(t, true, time.Hour, 100,
		MetricConfig{Name: "e.count", Type: TypeCounter},
		MetricConfig{Name: "e.v", Type: TypeDistribution, Buckets: []float64{1, 10}})
	t0 := time.Unix(1000, 0)
	ingest(a, t0.Add(time.Second), ev("e", 0.5, nil), ev("e", 5, nil))
	p := points(a.flush(t0.Add(10*time.Second), noScope))
	assert.Equal(t, int64(2), p["e.count{}"].intValue)
	assert.Equal(t, pmetric.AggregationTemporalityDelta, p["e.count{}"].temporal)
	assert.Equal(t, []uint64{1, 1, 0}, p["e.v{}"].buckets)
	assert.Equal(t, pcommon.NewTimestampFromTime(t0), p["e.count{}"].start)

	assert.Equal(t, 0, a.flush(t0.Add(20*time.Second), noScope).DataPointCount(), "delta: nothing new, nothing sent")

	ingest(a, t0.Add(25*time.Second), ev("e", 50, nil))
	p = points(a.flush(t0.Add(30*time.Second), noScope))
	assert.Equal(t, int64(1), p["e.count{}"].intValue)
	assert.Equal(t, []uint64{0, 0, 1}, p["e.v{}"].buckets)
	assert.Equal(t, pcommon.NewTimestampFromTime(t0.Add(20*time.Second)), p["e.count{}"].start, "delta start = previous flush")
}

func TestCumulativeTemporalityKeepsCounting(t *testing.T) {
	a := newTestAggregator(t, false, time.Hour, 100, MetricConfig{Name: "e.count", Type: TypeCounter},
		MetricConfig{Name: "e.v", Type: TypeSummary, Quantiles: []float64{0.5}})
	t0 := time.Unix(1000, 0)
	ingest(a, t0.Add(time.Second), ev("e", 1, nil), ev("e", 3, nil))
	p := points(a.flush(t0.Add(10*time.Second), noScope))
	assert.Equal(t, int64(2), p["e.count{}"].intValue)
	assert.Equal(t, map[float64]float64{0.5: 1}, p["e.v{}"].quantiles)
	p = points(a.flush(t0.Add(20*time.Second), noScope))
	assert.Equal(t, int64(2), p["e.count{}"].intValue, "cumulative series are re-sent")
	assert.Equal(t, map[float64]float64{0.5: 1}, p["e.v{}"].quantiles, "the latest interval with samples, until the next one: every scrape sees them")
	assert.Equal(t, uint64(2), p["e.v{}"].count)
	ingest(a, t0.Add(25*time.Second), ev("e", 7, nil))
	p = points(a.flush(t0.Add(30*time.Second), noScope))
	assert.Equal(t, int64(3), p["e.count{}"].intValue)
	assert.Equal(t, pcommon.NewTimestampFromTime(t0.Add(time.Second)), p["e.count{}"].start)
	assert.Equal(t, map[float64]float64{0.5: 7}, p["e.v{}"].quantiles)
	assert.InDelta(t, 11.0, p["e.v{}"].sum, 0)
}

func TestSeriesUnseenForTTLAreForgotten(t *testing.T) {
	a := newTestAggregator(t, false, time.Minute, 100, MetricConfig{Name: "e.count", Type: TypeCounter, Tags: []string{"q"}})
	t0 := time.Unix(1000, 0)
	ingest(a, t0, ev("e", 1, map[string]any{"q": "old"}))
	ingest(a, t0.Add(50*time.Second), ev("e", 1, map[string]any{"q": "new"}))
	p := points(a.flush(t0.Add(90*time.Second), noScope))
	assert.NotContains(t, p, "e.count{q=old}")
	assert.Contains(t, p, "e.count{q=new}")
	assert.Equal(t, int64(1), a.seriesCount())
}

func TestMaxSeriesFoldsIntoOverflowSeries(t *testing.T) {
	tr := startTestReceiver(t, func(c *Config) {
		c.DefaultMetrics = false
		c.MaxSeriesPerMetric = 2
		c.Metrics = []MetricConfig{{Name: "anvil.x.count", Type: TypeCounter, Tags: []string{"q"}}}
	})
	require.Equal(t, 200, postJSON(t, tr.url, `[
		{"name": "anvil.x", "metadata": {"q": "a"}}, {"name": "anvil.x", "metadata": {"q": "b"}},
		{"name": "anvil.x", "metadata": {"q": "c"}}, {"name": "anvil.x", "metadata": {"q": "d"}},
		{"name": "anvil.x", "metadata": {"q": "a"}}]`).code)
	md := tr.flush()
	require.Len(t, md, 1)
	p := points(md[0])
	assert.Equal(t, int64(2), p["anvil.x.count{q=a}"].intValue)
	assert.Equal(t, int64(1), p["anvil.x.count{q=b}"].intValue)
	assert.Equal(t, int64(2), p["anvil.x.count{otel.metric.overflow=true}"].intValue)
	assert.Len(t, p, 3)
	metadatatest.AssertEqualReceiverAnvilMetricPointsOverflowed(t, tr.tel, []metricdata.DataPoint[int64]{
		{Attributes: attribute.NewSet(attribute.String("metric", "anvil.x.count")), Value: 2},
	}, metricdatatest.IgnoreTimestamp(), metricdatatest.IgnoreExemplars())
	metadatatest.AssertEqualReceiverAnvilMetricSeries(t, tr.tel, []metricdata.DataPoint[int64]{{Value: 2}},
		metricdatatest.IgnoreTimestamp(), metricdatatest.IgnoreExemplars())
}

func TestExponentialDistribution(t *testing.T) {
	a := newTestAggregator(t, false, time.Hour, 100,
		MetricConfig{Name: "e.v", Type: TypeDistribution, Histogram: HistogramExponential, MaxSize: 4})
	vals := []float64{1, 2, 3, 4, 100, 0, -2}
	evs := make([]decodedEvent, len(vals))
	for i, v := range vals {
		evs[i] = ev("e", v, nil)
	}
	ingest(a, time.Unix(1001, 0), evs...)
	p := points(a.flush(time.Unix(1010, 0), noScope))["e.v{}"]
	require.Equal(t, pmetric.MetricTypeExponentialHistogram, p.typ)
	dp := p.expo
	assert.Equal(t, uint64(7), dp.Count())
	assert.InDelta(t, 108.0, dp.Sum(), 0)
	assert.Equal(t, uint64(1), dp.ZeroCount())
	assert.InDelta(t, -2.0, dp.Min(), 0)
	assert.InDelta(t, 100.0, dp.Max(), 0)
	// 1..100: at scale -1 (base 4) the buckets (1/4,1] .. (64,256] are 5, too
	// many for max_size 4; at scale -2 (base 16): (1/16,1] (1,16] (16,256].
	assert.Equal(t, int32(-2), dp.Scale())
	assert.Equal(t, int32(-1), dp.Positive().Offset())
	assert.Equal(t, []uint64{1, 3, 1}, dp.Positive().BucketCounts().AsRaw())
	var total uint64
	for _, c := range dp.Positive().BucketCounts().All() {
		total += c
	}
	assert.Equal(t, uint64(5), total)
	assert.Equal(t, []uint64{1}, dp.Negative().BucketCounts().AsRaw())
}

func TestMetricWithoutItsMeasurementSkipsTheEvent(t *testing.T) {
	a := newTestAggregator(t, false, time.Hour, 100, MetricConfig{Name: "e.other", Type: TypeSum})
	ingest(a, time.Unix(1001, 0), ev("e", 1, nil))
	assert.Equal(t, 0, a.flush(time.Unix(1010, 0), noScope).DataPointCount())
}

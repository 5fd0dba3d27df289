package foundationexporter

import (
	"encoding/json"
	"strconv"
	"syscall"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/pmetric/pmetricotlp"
)

// benchMetrics is a 1000-point batch shaped like Anvil's: 250 series each of
// a counter, a gauge, a histogram (10 bounds) and a summary-free sum, with
// three attributes per point and two resource tags.
func benchMetrics() pmetric.Metrics {
	md := pmetric.NewMetrics()
	rm := md.ResourceMetrics().AppendEmpty()
	rm.Resource().Attributes().PutStr("service.name", "anvil")
	rm.Resource().Attributes().PutStr("tenant_id", "acme")
	ms := rm.ScopeMetrics().AppendEmpty().Metrics()
	c := ms.AppendEmpty()
	c.SetName("anvil.label.submit.count")
	cs := c.SetEmptySum()
	cs.SetIsMonotonic(true)
	cs.SetAggregationTemporality(pmetric.AggregationTemporalityDelta)
	g := ms.AppendEmpty()
	g.SetName("anvil.queue.depth")
	gg := g.SetEmptyGauge()
	h := ms.AppendEmpty()
	h.SetName("anvil.label.submit.duration")
	hh := h.SetEmptyHistogram()
	hh.SetAggregationTemporality(pmetric.AggregationTemporalityDelta)
	s := ms.AppendEmpty()
	s.SetName("anvil.export.bytes")
	ss := s.SetEmptySum()
	ss.SetIsMonotonic(true)
	ss.SetAggregationTemporality(pmetric.AggregationTemporalityCumulative)
	now := pcommon.NewTimestampFromTime(time.Unix(1_700_000_000, 0))
	attrs := func(m pcommon.Map, i int) {
		m.PutStr("queue_id", "queue-"+strconv.Itoa(i%50))
		m.PutStr("policy_type", "round_robin")
		m.PutStr("format", "jsonl")
	}
	for i := 0; i < 250; i++ {
		dp := cs.DataPoints().AppendEmpty()
		dp.SetIntValue(int64(i))
		dp.SetTimestamp(now)
		attrs(dp.Attributes(), i)
		gp := gg.DataPoints().AppendEmpty()
		gp.SetDoubleValue(float64(i) * 1.5)
		gp.SetTimestamp(now)
		attrs(gp.Attributes(), i)
		hp := hh.DataPoints().AppendEmpty()
		hp.SetTimestamp(now)
		hp.SetCount(55)
		hp.SetSum(1234.5)
		hp.SetMin(0.5)
		hp.SetMax(900)
		hp.ExplicitBounds().FromRaw([]float64{1, 2, 5, 10, 25, 50, 100, 250, 500, 1000})
		hp.BucketCounts().FromRaw([]uint64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 0})
		attrs(hp.Attributes(), i)
		sp := ss.DataPoints().AppendEmpty()
		sp.SetDoubleValue(float64(i) * 1024)
		sp.SetTimestamp(now)
		attrs(sp.Attributes(), i)
	}
	return md
}

// cpuTime is the process's user+system CPU time. The machine running the
// benchmarks is shared, so wall time per op is inflated by other load; CPU
// time per op (reported as cpu-ns/op) is the steadier figure.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// reportCPU starts the CPU clock; call the result when the loop is done.
func reportCPU(b *testing.B) func() {
	start := cpuTime()
	return func() { b.ReportMetric(float64(cpuTime()-start)/float64(b.N), "cpu-ns/op") }
}

// BenchmarkEncode1000Points is the Foundation encoding of a 1000-point batch
// (records + request body), the figure ADR-008 asks for (< 100 ms; aim < 1 ms).
func BenchmarkEncode1000Points(b *testing.B) {
	md := benchMetrics()
	if md.DataPointCount() != 1000 {
		b.Fatalf("%d points", md.DataPointCount())
	}
	enc := encoder{resourceTags: []string{"service.name", "tenant_id"}, now: time.Now}
	size := 0
	b.ReportAllocs()
	b.ResetTimer()
	defer reportCPU(b)()
	for i := 0; i < b.N; i++ {
		bt := newBatch(1000, size) // as pushMetrics does: a buffer per batch, sized from the last one
		enc.encode(md, bt)
		size = len(bt.buf)/1000 + 1
		body := bt.body(0, bt.len())
		if bt.len() != 1000 || len(body) == 0 {
			b.Fatal("bad encoding")
		}
	}
}

// BenchmarkStockOTLPJSON1000Points is the stock peer: the otlp_http exporter's
// `encoding: json` marshalling of the same batch.
func BenchmarkStockOTLPJSON1000Points(b *testing.B) {
	req := pmetricotlp.NewExportRequestFromMetrics(benchMetrics())
	b.ReportAllocs()
	b.ResetTimer()
	defer reportCPU(b)()
	for i := 0; i < b.N; i++ {
		if _, err := req.MarshalJSON(); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkStockOTLPProto1000Points is the otlp_http exporter's default
// (protobuf) marshalling of the same batch.
func BenchmarkStockOTLPProto1000Points(b *testing.B) {
	req := pmetricotlp.NewExportRequestFromMetrics(benchMetrics())
	b.ReportAllocs()
	b.ResetTimer()
	defer reportCPU(b)()
	for i := 0; i < b.N; i++ {
		if _, err := req.MarshalProto(); err != nil {
			b.Fatal(err)
		}
	}
}

// TestBenchmarkBatchEncodesToValidJSON keeps the benchmark honest: its batch
// encodes to 1000 well-formed records.
func TestBenchmarkBatchEncodesToValidJSON(t *testing.T) {
	enc := encoder{resourceTags: []string{"service.name", "tenant_id"}, now: time.Now}
	bt := newBatch(0, 0)
	enc.encode(benchMetrics(), bt)
	var payload struct {
		Metrics []map[string]any `json:"metrics"`
	}
	if err := json.Unmarshal(bt.body(0, bt.len()), &payload); err != nil || len(payload.Metrics) != 1000 {
		t.Fatalf("err %v, %d records", err, len(payload.Metrics))
	}
}

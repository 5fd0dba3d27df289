package alertprocessor

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/processor"
	"go.opentelemetry.io/collector/processor/processorhelper"
)

// adrRules are the four ADR-008 rules of config/gateway.yaml.
func adrRules() []RuleConfig {
	return []RuleConfig{
		{Name: "dispatch_latency_p99", Metric: "anvil.assignment.dispatch.duration", Stat: StatP99, Window: 5 * time.Minute, Op: OpGT, Threshold: 500, GroupBy: []string{"policy_type"}, Severity: SeverityWarning},
		{Name: "low_agreement", Event: "anvil.agreement.low_score", Field: "value", Op: OpLT, Threshold: 0.4, GroupBy: []string{"dimension"}, Severity: SeverityCritical},
		{Name: "export_failures", Event: "anvil.export.generate.exception", Stat: StatCount, Window: time.Hour, Op: OpGE, Threshold: 3, Severity: SeverityError},
		{Name: "timeout_spike", Metric: "anvil.assignment.timed_out.count", Stat: StatIncrease, Window: time.Hour, Op: OpGE, Threshold: 50, Severity: SeverityWarning},
	}
}

// benchMetrics is a gateway-like batch: the two metrics the ADR rules read
// (100 histogram points, 100 counter points) and, with others, 8 metrics of
// 100 points no rule reads.
func benchMetrics(others bool) pmetric.Metrics {
	md := pmetric.NewMetrics()
	rm := md.ResourceMetrics().AppendEmpty()
	rm.Resource().Attributes().PutStr("service.name", "anvil")
	ms := rm.ScopeMetrics().AppendEmpty().Metrics()
	start := pcommon.NewTimestampFromTime(time.Now().Add(-time.Hour))
	h := ms.AppendEmpty()
	h.SetName("anvil.assignment.dispatch.duration")
	hist := h.SetEmptyHistogram()
	hist.SetAggregationTemporality(pmetric.AggregationTemporalityCumulative)
	for i := range 100 {
		dp := hist.DataPoints().AppendEmpty()
		dp.SetStartTimestamp(start)
		dp.Attributes().PutStr("policy_type", []string{"round_robin", "least_loaded", "skill"}[i%3])
		dp.Attributes().PutStr("queue_id", fmt.Sprintf("q%d", i))
		dp.ExplicitBounds().FromRaw([]float64{10, 50, 100, 250, 500, 1000, 2500})
		dp.BucketCounts().FromRaw([]uint64{5, 10, 20, 10, 4, 1, 0, 0})
		dp.SetCount(50)
		dp.SetSum(5000)
	}
	c := ms.AppendEmpty()
	c.SetName("anvil.assignment.timed_out.count")
	sum := c.SetEmptySum()
	sum.SetIsMonotonic(true)
	sum.SetAggregationTemporality(pmetric.AggregationTemporalityCumulative)
	for i := range 100 {
		dp := sum.DataPoints().AppendEmpty()
		dp.SetStartTimestamp(start)
		dp.Attributes().PutStr("queue_id", fmt.Sprintf("q%d", i))
		dp.SetIntValue(int64(i))
	}
	for m := range 8 {
		if !others {
			break
		}
		g := ms.AppendEmpty()
		g.SetName(fmt.Sprintf("anvil.other.metric_%d", m))
		gauge := g.SetEmptyGauge()
		for i := range 100 {
			dp := gauge.DataPoints().AppendEmpty()
			dp.Attributes().PutStr("queue_id", fmt.Sprintf("q%d", i))
			dp.SetDoubleValue(float64(i))
		}
	}
	return md
}

// benchLogs is 1000 event log records, 10% of which the ADR rules read.
func benchLogs() plog.Logs {
	ld := plog.NewLogs()
	lrs := ld.ResourceLogs().AppendEmpty().ScopeLogs().AppendEmpty().LogRecords()
	names := []string{"anvil.label.submit.stop", "anvil.assignment.created", "anvil.assignment.completed", "anvil.auth.access_granted", "anvil.export.progress"}
	for i := range 1000 {
		lr := lrs.AppendEmpty()
		switch {
		case i%20 == 0:
			lr.SetEventName("anvil.agreement.low_score")
			lr.Body().SetEmptyMap().PutDouble("value", 0.5)
			lr.Attributes().PutStr("dimension", "label")
		case i%20 == 1:
			lr.SetEventName("anvil.export.generate.exception")
		default:
			lr.SetEventName(names[i%len(names)])
			lr.Body().SetEmptyMap().PutInt("duration", 1234)
		}
		lr.Attributes().PutStr("queue_id", fmt.Sprintf("q%d", i%50))
	}
	return ld
}

func benchProcessors(b *testing.B) (alertM processor.Metrics, passM processor.Metrics, alertL processor.Logs, passL processor.Logs) {
	ctx := context.Background()
	f, set := NewFactory(), testSettings(b)
	cfg := testConfig(adrRules()...)
	cfg.EvaluationInterval = 15 * time.Second
	require.NoError(b, cfg.Validate())
	var err error
	alertM, err = f.CreateMetrics(ctx, set, cfg, consumertest.NewNop())
	require.NoError(b, err)
	alertL, err = f.CreateLogs(ctx, set, cfg, consumertest.NewNop())
	require.NoError(b, err)
	caps := processorhelper.WithCapabilities(consumer.Capabilities{MutatesData: false})
	passM, err = processorhelper.NewMetrics(ctx, set, cfg, consumertest.NewNop(),
		func(_ context.Context, md pmetric.Metrics) (pmetric.Metrics, error) { return md, nil }, caps)
	require.NoError(b, err)
	passL, err = processorhelper.NewLogs(ctx, set, cfg, consumertest.NewNop(),
		func(_ context.Context, ld plog.Logs) (plog.Logs, error) { return ld, nil }, caps)
	require.NoError(b, err)
	b.Cleanup(func() {
		_ = alertM.Shutdown(ctx)
		_ = alertL.Shutdown(ctx)
	})
	return
}

// BenchmarkMetrics reports ns per data point through the alert processor
// with the ADR-008 rules loaded and through a pass-through processor, for a
// batch where every point is read by a rule (matched) and a gateway-like
// batch where 200 of 1000 are (mixed).
func BenchmarkMetrics(b *testing.B) {
	alertM, passM, _, _ := benchProcessors(b)
	for _, batch := range []struct {
		name string
		md   pmetric.Metrics
	}{{"matched", benchMetrics(false)}, {"mixed", benchMetrics(true)}} {
		points := float64(batch.md.DataPointCount())
		for _, bc := range []struct {
			name string
			p    processor.Metrics
		}{{"passthrough", passM}, {"alert", alertM}} {
			b.Run(batch.name+"/"+bc.name, func(b *testing.B) {
				b.ReportAllocs()
				start := time.Now()
				for b.Loop() {
					_ = bc.p.ConsumeMetrics(context.Background(), batch.md)
				}
				b.ReportMetric(float64(time.Since(start).Nanoseconds())/float64(b.N)/points, "ns/point")
			})
		}
	}
}

// BenchmarkLogs reports ns per event log record likewise.
func BenchmarkLogs(b *testing.B) {
	_, _, alertL, passL := benchProcessors(b)
	ld := benchLogs()
	records := float64(ld.LogRecordCount())
	for _, bc := range []struct {
		name string
		p    processor.Logs
	}{{"passthrough", passL}, {"alert", alertL}} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			start := time.Now()
			for b.Loop() {
				_ = bc.p.ConsumeLogs(context.Background(), ld)
			}
			b.ReportMetric(float64(time.Since(start).Nanoseconds())/float64(b.N)/records, "ns/point")
		})
	}
}

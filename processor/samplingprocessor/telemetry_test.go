package samplingprocessor

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/pipeline"
	"go.opentelemetry.io/collector/processor/processortest"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.opentelemetry.io/otel/sdk/metric/metricdata/metricdatatest"

	"github.com/anvil/anvilcol/internal/clock/clocktest"
	"github.com/anvil/anvilcol/processor/samplingprocessor/internal/metadata"
	"github.com/anvil/anvilcol/processor/samplingprocessor/internal/metadatatest"
)

func dp(v int64, kv ...attribute.KeyValue) metricdata.DataPoint[int64] {
	return metricdata.DataPoint[int64]{Attributes: attribute.NewSet(kv...), Value: v}
}

func TestTelemetryCountsEveryDecisionPerRule(t *testing.T) {
	tel := componenttest.NewTelemetry()
	t.Cleanup(func() { require.NoError(t, tel.Shutdown(context.Background())) })
	clk := clocktest.NewFake(time.Time{})
	cfg := adrConfig(
		RuleConfig{Name: "critical", Events: []string{"anvil.agreement.low_score"}, Rate: ptr(1)},
		RuleConfig{Name: "never", Events: []string{"anvil.label.submit.stop"}, Rate: ptr(0)},
		RuleConfig{Name: "capped", Events: []string{"anvil.assignment.*"}, MaxPerSecond: 2},
	)
	cfg.DefaultRate = 0.5
	sink := new(consumertest.LogsSink)
	p := newLogs(t, cfg, sink, clk, metadatatest.NewSettings(tel))

	ld, sl := newLogsData()
	for i := 0; i < 3; i++ {
		logRec(sl, "anvil.agreement.low_score", traceIDWithRandomness(0), nil)
	}
	for i := 0; i < 4; i++ {
		logRec(sl, "anvil.label.submit.stop", traceIDWithRandomness(1<<56-1), nil)
	}
	for i := 0; i < 5; i++ {
		logRec(sl, "anvil.assignment.created", traceIDWithRandomness(7), nil)
	}
	logRec(sl, "anvil.queue.created", traceIDWithRandomness(1<<56-1), nil) // default, kept
	logRec(sl, "anvil.queue.created", traceIDWithRandomness(1), nil)       // default, dropped
	require.NoError(t, p.ConsumeLogs(ctx, ld))
	assert.Equal(t, 3+2+1, sink.LogRecordCount())

	rs := func(rule string) []attribute.KeyValue {
		return []attribute.KeyValue{attribute.String("rule", rule), attribute.String("signal", "logs")}
	}
	with := func(kv []attribute.KeyValue, more ...attribute.KeyValue) []attribute.KeyValue {
		return append(append([]attribute.KeyValue{}, kv...), more...)
	}
	opts := []metricdatatest.Option{metricdatatest.IgnoreTimestamp()}
	metadatatest.AssertEqualSamplingItemsSeen(t, tel, []metricdata.DataPoint[int64]{
		dp(3, rs("critical")...), dp(4, rs("never")...), dp(5, rs("capped")...), dp(2, rs("default")...),
	}, opts...)
	metadatatest.AssertEqualSamplingItemsKept(t, tel, []metricdata.DataPoint[int64]{
		dp(3, rs("critical")...), dp(2, rs("capped")...), dp(1, rs("default")...),
	}, opts...)
	metadatatest.AssertEqualSamplingItemsDropped(t, tel, []metricdata.DataPoint[int64]{
		dp(4, with(rs("never"), attribute.String("reason", "rate"))...),
		dp(3, with(rs("capped"), attribute.String("reason", "rate_limit"))...),
		dp(1, with(rs("default"), attribute.String("reason", "rate"))...),
	}, opts...)

	// A second batch adds to the same series.
	clk.Advance(time.Second)
	ld, sl = newLogsData()
	for i := 0; i < 5; i++ {
		logRec(sl, "anvil.assignment.created", traceIDWithRandomness(7), nil)
	}
	require.NoError(t, p.ConsumeLogs(ctx, ld))
	metadatatest.AssertEqualSamplingItemsDropped(t, tel, []metricdata.DataPoint[int64]{
		dp(4, with(rs("never"), attribute.String("reason", "rate"))...),
		dp(6, with(rs("capped"), attribute.String("reason", "rate_limit"))...),
		dp(1, with(rs("default"), attribute.String("reason", "rate"))...),
	}, opts...)
}

func TestTracesTelemetryIsLabelledTraces(t *testing.T) {
	tel := componenttest.NewTelemetry()
	t.Cleanup(func() { require.NoError(t, tel.Shutdown(context.Background())) })
	sink := new(consumertest.TracesSink)
	p := newTraces(t, adrConfig(adrRules()...), sink, nil, metadatatest.NewSettings(tel))
	td, ss := newTracesData()
	span(ss, "anvil.label.submit", traceIDWithRandomness(0), "")
	span(ss, "anvil.label.submit", traceIDWithRandomness(1<<56-1), "")
	require.NoError(t, p.ConsumeTraces(ctx, td))
	ls := []attribute.KeyValue{attribute.String("rule", "label_submits"), attribute.String("signal", "traces")}
	metadatatest.AssertEqualSamplingItemsSeen(t, tel, []metricdata.DataPoint[int64]{dp(2, ls...)}, metricdatatest.IgnoreTimestamp())
	metadatatest.AssertEqualSamplingItemsKept(t, tel, []metricdata.DataPoint[int64]{dp(1, ls...)}, metricdatatest.IgnoreTimestamp())
}

func TestFactoryOffersLogsAndTracesOnly(t *testing.T) {
	f := NewFactory()
	assert.Equal(t, metadata.Type, f.Type())
	set := processortest.NewNopSettings(metadata.Type)
	_, err := f.CreateMetrics(ctx, set, f.CreateDefaultConfig(), consumertest.NewNop())
	assert.ErrorIs(t, err, pipeline.ErrSignalNotSupported)
	lp, err := f.CreateLogs(ctx, set, f.CreateDefaultConfig(), consumertest.NewNop())
	require.NoError(t, err)
	assert.True(t, lp.Capabilities().MutatesData)
	tp, err := f.CreateTraces(ctx, set, f.CreateDefaultConfig(), consumertest.NewNop())
	require.NoError(t, err)
	assert.True(t, tp.Capabilities().MutatesData)
}

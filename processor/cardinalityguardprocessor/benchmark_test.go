package cardinalityguardprocessor

import (
	"context"
	"runtime"
	"strconv"
	"testing"

	"github.com/open-telemetry/opentelemetry-collector-contrib/processor/attributesprocessor"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/confmap"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/processor"
	"go.opentelemetry.io/collector/processor/processortest"
)

// BenchmarkDropAttributes compares, in one run, the guard with the cheapest
// stock way to delete the same attributes in this build: the contrib
// `attributes` processor (v0.155.0) with three delete actions, and a plain
// pdata walk that deletes the keys (the floor). The batch is Anvil's case:
// labeler_id-tagged counters, 20 queues x 50 labelers = 1000 points. Unlike the
// stock processor the guard also re-aggregates the 50 points per queue into
// one, so its output is correct where the stock one emits colliding series.
//
//	go test -run '^$' -bench BenchmarkDropAttributes -benchmem ./processor/cardinalityguardprocessor/
func BenchmarkDropAttributes(b *testing.B) {
	for _, temporality := range []pmetric.AggregationTemporality{pmetric.AggregationTemporalityCumulative, pmetric.AggregationTemporalityDelta} {
		name := "cumulative"
		if temporality == pmetric.AggregationTemporalityDelta {
			name = "delta"
		}
		input := benchBatch(temporality, 0)
		points := 1000
		for _, marshal := range []bool{false, true} {
			suffix := ""
			if marshal {
				suffix = "+otlp_marshal"
			}
			b.Run(name+"/cardinality_guard"+suffix, func(b *testing.B) {
				sink := &marshalSink{marshal: marshal}
				p := newBenchProcessor(b, NewFactory(), nil, sink)
				checkDeletes(b, p, sink, input, points/50)
				runBench(b, p, input, points)
			})
			b.Run(name+"/attributes_processor"+suffix, func(b *testing.B) {
				sink := &marshalSink{marshal: marshal}
				p := newBenchProcessor(b, attributesprocessor.NewFactory(), map[string]any{
					"actions": []any{
						map[string]any{"key": "labeler_id", "action": "delete"},
						map[string]any{"key": "sample_id", "action": "delete"},
						map[string]any{"key": "assignment_id", "action": "delete"},
					},
				}, sink)
				checkDeletes(b, p, sink, input, points)
				runBench(b, p, input, points)
			})
		}
		b.Run(name+"/pdata_delete_floor", func(b *testing.B) {
			drop := map[string]bool{"labeler_id": true, "sample_id": true, "assignment_id": true}
			runBenchFunc(b, func(md pmetric.Metrics) {
				rms := md.ResourceMetrics()
				for i := 0; i < rms.Len(); i++ {
					sms := rms.At(i).ScopeMetrics()
					for j := 0; j < sms.Len(); j++ {
						ms := sms.At(j).Metrics()
						for k := 0; k < ms.Len(); k++ {
							dps := ms.At(k).Sum().DataPoints()
							for l := 0; l < dps.Len(); l++ {
								dps.At(l).Attributes().RemoveIf(func(k string, _ pcommon.Value) bool { return drop[k] })
							}
						}
					}
				}
			}, input, points)
		})
	}
}

// marshalSink is the next consumer: optionally it marshals what it receives
// to OTLP protobuf, as an exporter would, and it keeps the last batch.
type marshalSink struct {
	marshal bool
	last    pmetric.Metrics
	m       pmetric.ProtoMarshaler
}

func (s *marshalSink) Capabilities() consumer.Capabilities { return consumer.Capabilities{} }

func (s *marshalSink) ConsumeMetrics(_ context.Context, md pmetric.Metrics) error {
	s.last = md
	if s.marshal {
		_, err := s.m.MarshalMetrics(md)
		return err
	}
	return nil
}

// checkDeletes runs one batch and checks the processor really removed the
// attributes (and how many points it emits).
func checkDeletes(b *testing.B, p processor.Metrics, sink *marshalSink, input pmetric.Metrics, wantPoints int) {
	md := pmetric.NewMetrics()
	input.CopyTo(md)
	require.NoError(b, p.ConsumeMetrics(context.Background(), md))
	dps := sink.last.ResourceMetrics().At(0).ScopeMetrics().At(0).Metrics().At(0).Sum().DataPoints()
	require.Equal(b, wantPoints, dps.Len())
	for i := 0; i < dps.Len(); i++ {
		_, ok := dps.At(i).Attributes().Get("labeler_id")
		require.False(b, ok)
	}
}

func newBenchProcessor(b *testing.B, f processor.Factory, raw map[string]any, next consumer.Metrics) processor.Metrics {
	cfg := f.CreateDefaultConfig()
	if raw != nil {
		require.NoError(b, confmap.NewFromStringMap(raw).Unmarshal(cfg))
	}
	p, err := f.CreateMetrics(context.Background(), processortest.NewNopSettings(f.Type()), cfg, next)
	require.NoError(b, err)
	b.Cleanup(func() { _ = p.Shutdown(context.Background()) })
	return p
}

func benchBatch(temporality pmetric.AggregationTemporality, round int) pmetric.Metrics {
	md, ms := newBatch()
	s := appendMetric(ms, submits).SetEmptySum()
	s.SetIsMonotonic(true)
	s.SetAggregationTemporality(temporality)
	for q := 0; q < 20; q++ {
		for l := 0; l < 50; l++ {
			dp := s.DataPoints().AppendEmpty()
			a := dp.Attributes()
			a.PutStr("queue_id", "queue-"+strconv.Itoa(q))
			a.PutStr("labeler_id", "labeler-"+strconv.Itoa(l))
			a.PutStr("policy_type", "round_robin")
			a.PutStr("schema_version_id", "v3")
			dp.SetStartTimestamp(sec(1))
			dp.SetTimestamp(sec(int64(10 + round)))
			dp.SetIntValue(int64(100 + round + l))
		}
	}
	return md
}

func runBench(b *testing.B, p processor.Metrics, input pmetric.Metrics, points int) {
	ctx := context.Background()
	runBenchFunc(b, func(md pmetric.Metrics) {
		if err := p.ConsumeMetrics(ctx, md); err != nil {
			b.Fatal(err)
		}
	}, input, points)
}

// runBenchFunc times f over fresh copies of input (the copy is not timed).
// Copies are decoded from OTLP protobuf, as a receiver hands them on: every
// string is its own allocation (CopyTo would share the bytes and keep them
// hot in cache).
func runBenchFunc(b *testing.B, f func(pmetric.Metrics), input pmetric.Metrics, points int) {
	const copies = 64
	batches := make([]pmetric.Metrics, copies)
	wire, err := (&pmetric.ProtoMarshaler{}).MarshalMetrics(input)
	require.NoError(b, err)
	refill := func() {
		for i := range batches {
			batches[i], err = (&pmetric.ProtoUnmarshaler{}).UnmarshalMetrics(wire)
			require.NoError(b, err)
		}
		runtime.GC() // the copies' garbage is not charged to f
	}
	refill()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if i%copies == 0 && i > 0 {
			b.StopTimer()
			refill()
			b.StartTimer()
		}
		f(batches[i%copies])
	}
	b.StopTimer()
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*points), "ns/point")
}

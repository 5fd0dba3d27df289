package samplingprocessor

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/open-telemetry/opentelemetry-collector-contrib/processor/probabilisticsamplerprocessor"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/processor"
	"go.opentelemetry.io/collector/processor/processortest"
)

// benchLogs is one batch of Anvil event logs as the anvil receiver shapes
// them: label submits (sampled at 10%) with trace ids and their metadata.
func benchLogs(n int) plog.Logs {
	r := rand.New(rand.NewPCG(99, 100))
	ld, sl := newLogsData()
	for i := 0; i < n; i++ {
		logRec(sl, "anvil.label.submit.stop", randomTraceID(r), map[string]any{
			"queue_id":      fmt.Sprintf("q%d", i%7),
			"labeler_id":    fmt.Sprintf("u%d", i%113),
			"assignment_id": fmt.Sprintf("a%d", i),
		})
	}
	return ld
}

func benchTraces(n int) ptrace.Traces {
	r := rand.New(rand.NewPCG(101, 102))
	td, ss := newTracesData()
	for i := 0; i < n; i++ {
		sp := span(ss, "anvil.label.submit", randomTraceID(r), "")
		sp.Attributes().PutStr("queue_id", fmt.Sprintf("q%d", i%7))
	}
	return td
}

// The peers, configured at the same 10% rate.
func benchPeers() []struct {
	name    string
	factory processor.Factory
	cfg     component.Config
} {
	ours := createDefaultConfig().(*Config)
	ours.Rules = adrRules()
	oursDefault := createDefaultConfig().(*Config)
	oursDefault.DefaultRate = 0.1

	stock := probabilisticsamplerprocessor.NewFactory()
	hashSeed := stock.CreateDefaultConfig().(*probabilisticsamplerprocessor.Config)
	hashSeed.SamplingPercentage = 10
	proportional := stock.CreateDefaultConfig().(*probabilisticsamplerprocessor.Config)
	proportional.SamplingPercentage = 10
	proportional.Mode = probabilisticsamplerprocessor.Proportional

	return []struct {
		name    string
		factory processor.Factory
		cfg     component.Config
	}{
		{"sampling_adr_rules", NewFactory(), ours},
		{"sampling_default_rate", NewFactory(), oursDefault},
		{"probabilistic_sampler_hash_seed", stock, hashSeed},
		{"probabilistic_sampler_proportional", stock, proportional},
	}
}

// BenchmarkLogs compares the sampling processor with the stock
// probabilistic_sampler (default hash_seed mode, and the OpenTelemetry
// consistent proportional mode) on the same 1000-record batches at 10%.
//
//	go test -run '^$' -bench 'BenchmarkLogs|BenchmarkTraces' -benchmem -count 5 ./processor/samplingprocessor/
func BenchmarkLogs(b *testing.B) {
	const batch = 1000
	tmpl := benchLogs(batch)
	for _, peer := range benchPeers() {
		b.Run(peer.name, func(b *testing.B) {
			p, err := peer.factory.CreateLogs(ctx, processortest.NewNopSettings(peer.factory.Type()), peer.cfg, consumertest.NewNop())
			require.NoError(b, err)
			runLogs(b, p, tmpl, batch)
		})
	}
}

func runLogs(b *testing.B, p consumer.Logs, tmpl plog.Logs, batch int) {
	b.ReportAllocs()
	for b.Loop() {
		b.StopTimer()
		ld := plog.NewLogs()
		tmpl.CopyTo(ld)
		b.StartTimer()
		if err := p.ConsumeLogs(ctx, ld); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*batch), "ns/item")
}

// BenchmarkTraces is BenchmarkLogs for spans.
func BenchmarkTraces(b *testing.B) {
	const batch = 1000
	tmpl := benchTraces(batch)
	for _, peer := range benchPeers() {
		if peer.name == "probabilistic_sampler_hash_seed" {
			continue // spans: compare with the OpenTelemetry-consistent mode
		}
		b.Run(peer.name, func(b *testing.B) {
			p, err := peer.factory.CreateTraces(ctx, processortest.NewNopSettings(peer.factory.Type()), peer.cfg, consumertest.NewNop())
			require.NoError(b, err)
			b.ReportAllocs()
			for b.Loop() {
				b.StopTimer()
				td := ptrace.NewTraces()
				tmpl.CopyTo(td)
				b.StartTimer()
				if err := p.ConsumeTraces(ctx, td); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*batch), "ns/item")
		})
	}
}

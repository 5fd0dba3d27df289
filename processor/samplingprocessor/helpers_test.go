package samplingprocessor

import (
	"context"
	"encoding/binary"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/processor"
	"go.opentelemetry.io/collector/processor/processorhelper"
	"go.opentelemetry.io/collector/processor/processortest"

	"github.com/anvil/anvilcol/internal/clock"
	"github.com/anvil/anvilcol/processor/samplingprocessor/internal/metadata"
)

func adrConfig(rules ...RuleConfig) *Config {
	cfg := createDefaultConfig().(*Config)
	cfg.Rules = rules
	return cfg
}

// newLogs builds the logs processor as the factory does, with the clock
// replaced when clk is non-nil.
func newLogs(t testing.TB, cfg *Config, next consumer.Logs, clk clock.Clock, set ...processor.Settings) processor.Logs {
	t.Helper()
	require.NoError(t, cfg.Validate())
	st := processortest.NewNopSettings(metadata.Type)
	if len(set) > 0 {
		st = set[0]
	}
	s, err := newSampler(st, cfg, signalLogs)
	require.NoError(t, err)
	if clk != nil {
		s.clk = clk
	}
	p, err := processorhelper.NewLogs(context.Background(), st, cfg, next, logsSampler{s}.processLogs,
		processorhelper.WithCapabilities(processorCapabilities), processorhelper.WithShutdown(s.shutdown))
	require.NoError(t, err)
	require.NoError(t, p.Start(context.Background(), componenttest.NewNopHost()))
	t.Cleanup(func() { require.NoError(t, p.Shutdown(context.Background())) })
	return p
}

func newTraces(t testing.TB, cfg *Config, next consumer.Traces, clk clock.Clock, set ...processor.Settings) processor.Traces {
	t.Helper()
	require.NoError(t, cfg.Validate())
	st := processortest.NewNopSettings(metadata.Type)
	if len(set) > 0 {
		st = set[0]
	}
	s, err := newSampler(st, cfg, signalTraces)
	require.NoError(t, err)
	if clk != nil {
		s.clk = clk
	}
	p, err := processorhelper.NewTraces(context.Background(), st, cfg, next, tracesSampler{s}.processTraces,
		processorhelper.WithCapabilities(processorCapabilities), processorhelper.WithShutdown(s.shutdown))
	require.NoError(t, err)
	require.NoError(t, p.Start(context.Background(), componenttest.NewNopHost()))
	t.Cleanup(func() { require.NoError(t, p.Shutdown(context.Background())) })
	return p
}

func randomTraceID(r *rand.Rand) pcommon.TraceID {
	var id pcommon.TraceID
	binary.BigEndian.PutUint64(id[:8], r.Uint64())
	binary.BigEndian.PutUint64(id[8:], r.Uint64())
	return id
}

// traceIDWithRandomness returns a trace id whose low 56 bits are rnd.
func traceIDWithRandomness(rnd uint64) pcommon.TraceID {
	var id pcommon.TraceID
	binary.BigEndian.PutUint64(id[:8], 0x0123456789abcdef)
	binary.BigEndian.PutUint64(id[8:], rnd&(1<<56-1)|0xab<<56)
	return id
}

// logRec appends an event log record to sl.
func logRec(sl plog.ScopeLogs, name string, tid pcommon.TraceID, attrs map[string]any) plog.LogRecord {
	lr := sl.LogRecords().AppendEmpty()
	lr.SetEventName(name)
	lr.SetTraceID(tid)
	if attrs != nil {
		if err := lr.Attributes().FromRaw(attrs); err != nil {
			panic(err)
		}
	}
	return lr
}

func newLogsData() (plog.Logs, plog.ScopeLogs) {
	ld := plog.NewLogs()
	return ld, ld.ResourceLogs().AppendEmpty().ScopeLogs().AppendEmpty()
}

func span(ss ptrace.ScopeSpans, name string, tid pcommon.TraceID, tracestate string) ptrace.Span {
	sp := ss.Spans().AppendEmpty()
	sp.SetName(name)
	sp.SetTraceID(tid)
	sp.TraceState().FromRaw(tracestate)
	return sp
}

func newTracesData() (ptrace.Traces, ptrace.ScopeSpans) {
	td := ptrace.NewTraces()
	return td, td.ResourceSpans().AppendEmpty().ScopeSpans().AppendEmpty()
}

// keptLogs returns every log record the sink received.
func keptLogs(sink *consumertest.LogsSink) []plog.LogRecord {
	var out []plog.LogRecord
	for _, ld := range sink.AllLogs() {
		for i := 0; i < ld.ResourceLogs().Len(); i++ {
			sls := ld.ResourceLogs().At(i).ScopeLogs()
			for j := 0; j < sls.Len(); j++ {
				lrs := sls.At(j).LogRecords()
				for k := 0; k < lrs.Len(); k++ {
					out = append(out, lrs.At(k))
				}
			}
		}
	}
	return out
}

func keptSpans(sink *consumertest.TracesSink) []ptrace.Span {
	var out []ptrace.Span
	for _, td := range sink.AllTraces() {
		for i := 0; i < td.ResourceSpans().Len(); i++ {
			sss := td.ResourceSpans().At(i).ScopeSpans()
			for j := 0; j < sss.Len(); j++ {
				sps := sss.At(j).Spans()
				for k := 0; k < sps.Len(); k++ {
					out = append(out, sps.At(k))
				}
			}
		}
	}
	return out
}

func countByName(lrs []plog.LogRecord) map[string]int {
	m := map[string]int{}
	for _, lr := range lrs {
		m[lr.EventName()]++
	}
	return m
}

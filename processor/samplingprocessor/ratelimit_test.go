package samplingprocessor

import (
	"math/rand/v2"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/pdata/pcommon"

	"github.com/anvil/anvilcol/internal/clock/clocktest"
)

func TestMaxPerSecondCapsKeptItems(t *testing.T) {
	clk := clocktest.NewFake(time.Time{})
	cfg := adrConfig(RuleConfig{Name: "noisy_queue", Events: []string{"anvil.assignment.*"}, MaxPerSecond: 10})
	sink := new(consumertest.LogsSink)
	p := newLogs(t, cfg, sink, clk)
	r := rand.New(rand.NewPCG(31, 32))
	send := func(n int) int {
		before := sink.LogRecordCount()
		ld, sl := newLogsData()
		for i := 0; i < n; i++ {
			logRec(sl, "anvil.assignment.created", randomTraceID(r), nil)
		}
		require.NoError(t, p.ConsumeLogs(ctx, ld))
		return sink.LogRecordCount() - before
	}
	assert.Equal(t, 10, send(50), "a full bucket holds one second of tokens")
	assert.Equal(t, 0, send(50), "no time passed, no tokens")
	clk.Advance(500 * time.Millisecond)
	assert.Equal(t, 5, send(50), "half a second earns 5 tokens")
	clk.Advance(time.Hour)
	assert.Equal(t, 10, send(50), "the bucket never holds more than max_per_second")
	clk.Advance(-time.Minute)
	assert.Equal(t, 0, send(5), "a clock going backwards earns nothing")
	for _, lr := range keptLogs(sink) {
		v, ok := lr.Attributes().Get(AttrCapped)
		require.True(t, ok, "items a cap let through are marked")
		assert.True(t, v.Bool())
		_, hasTh := lr.Attributes().Get(AttrThreshold)
		assert.False(t, hasTh, "rate 1: no threshold")
	}
}

func TestMaxPerSecondAppliesAfterTheRate(t *testing.T) {
	clk := clocktest.NewFake(time.Time{})
	cfg := adrConfig(RuleConfig{Name: "noisy", Events: []string{"anvil.assignment.*"}, Rate: ptr(0.5), MaxPerSecond: 100})
	sink := new(consumertest.TracesSink)
	p := newTraces(t, cfg, sink, clk)
	// 1000 spans whose trace ids all pass 50%: the rate keeps them, the cap
	// keeps 100.
	td, ss := newTracesData()
	for i := 0; i < 1000; i++ {
		span(ss, "anvil.assignment.dispatch", traceIDWithRandomness(1<<56-1-uint64(i)), "")
	}
	// 1000 that fail 50% never reach the cap.
	for i := 0; i < 1000; i++ {
		span(ss, "anvil.assignment.dispatch", traceIDWithRandomness(uint64(i)), "")
	}
	require.NoError(t, p.ConsumeTraces(ctx, td))
	kept := keptSpans(sink)
	require.Len(t, kept, 100)
	for _, sp := range kept {
		assert.Equal(t, "ot=th:8", sp.TraceState().AsRaw())
		v, ok := sp.Attributes().Get(AttrCapped)
		assert.True(t, ok && v.Bool())
	}
}

func TestFractionalMaxPerSecond(t *testing.T) {
	clk := clocktest.NewFake(time.Time{})
	cfg := adrConfig(RuleConfig{Name: "rare", Events: []string{"a.b"}, MaxPerSecond: 0.5})
	sink := new(consumertest.LogsSink)
	p := newLogs(t, cfg, sink, clk)
	for i := 0; i < 6; i++ {
		ld, sl := newLogsData()
		logRec(sl, "a.b", pcommon.NewTraceIDEmpty(), nil)
		logRec(sl, "a.b", pcommon.NewTraceIDEmpty(), nil)
		require.NoError(t, p.ConsumeLogs(ctx, ld))
		clk.Advance(time.Second)
	}
	// 1 at t=0 (burst 1), then one token every 2 s: t=2, t=4.
	assert.Equal(t, 3, sink.LogRecordCount())
}

func TestTokenBucketIsSafeForConcurrentUse(t *testing.T) {
	b := newTokenBucket(1000)
	now := time.Unix(0, 0)
	got := make(chan int, 8)
	for g := 0; g < 8; g++ {
		go func() {
			n := 0
			for i := 0; i < 500; i++ {
				n += b.take(now, 1)
			}
			got <- n
		}()
	}
	total := 0
	for g := 0; g < 8; g++ {
		total += <-got
	}
	assert.Equal(t, 1000, total)
}

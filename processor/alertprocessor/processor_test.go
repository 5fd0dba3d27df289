package alertprocessor

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/anvil/anvilcol/processor/alertprocessor/internal/notify"
)

func TestDataPassesThroughUnchanged(t *testing.T) {
	cfg := testConfig(
		RuleConfig{Name: "m", Metric: "anvil.queue.depth", Stat: StatMax, Op: OpGT, Threshold: 1},
		RuleConfig{Name: "e", Event: "anvil.*", Stat: StatCount, Op: OpGT, Threshold: 1},
	)
	f, set := NewFactory(), testSettings(t)
	ms, ls, ts := new(consumertest.MetricsSink), new(consumertest.LogsSink), new(consumertest.TracesSink)
	mp, err := f.CreateMetrics(context.Background(), set, cfg, ms)
	require.NoError(t, err)
	lp, err := f.CreateLogs(context.Background(), set, cfg, ls)
	require.NoError(t, err)
	tp, err := f.CreateTraces(context.Background(), set, cfg, ts)
	require.NoError(t, err)
	assert.False(t, mp.Capabilities().MutatesData)
	for _, c := range []component.Component{mp, lp, tp} {
		require.NoError(t, c.Start(context.Background(), componenttest.NewNopHost()))
	}

	md := gaugeMetrics("anvil.queue.depth", map[string]string{"queue_id": "q"}, 3, 4)
	want := pmetric.NewMetrics()
	md.CopyTo(want)
	require.NoError(t, mp.ConsumeMetrics(context.Background(), md))
	ld := eventLogs("anvil.agreement.low_score", "value", map[string]string{"dimension": "d"}, 0.2)
	wantLogs := plog.NewLogs()
	ld.CopyTo(wantLogs)
	require.NoError(t, lp.ConsumeLogs(context.Background(), ld))
	td := ptrace.NewTraces()
	td.ResourceSpans().AppendEmpty().ScopeSpans().AppendEmpty().Spans().AppendEmpty().SetName("anvil.label.submit")
	wantTraces := ptrace.NewTraces()
	td.CopyTo(wantTraces)
	require.NoError(t, tp.ConsumeTraces(context.Background(), td))

	require.Len(t, ms.AllMetrics(), 1)
	assert.Equal(t, want, ms.AllMetrics()[0])
	assert.Equal(t, wantLogs, ls.AllLogs()[0])
	assert.Equal(t, wantTraces, ts.AllTraces()[0])
	for _, c := range []component.Component{mp, lp, tp} {
		require.NoError(t, c.Shutdown(context.Background()))
	}
}

func TestOneEngineSharedByAllPipelines(t *testing.T) {
	in := newIntake(t)
	nc := NewNotifierConfig(notify.TypeWebhook)
	nc.Endpoint = in.URL
	cfg := testConfig(RuleConfig{Name: "busy", Event: "anvil.label.submit*", Stat: StatCount, Window: 300 * time.Millisecond, Op: OpGE, Threshold: 2})
	cfg.EvaluationInterval = 100 * time.Millisecond
	cfg.Notifiers = []NotifierConfig{nc}
	require.NoError(t, cfg.Validate())

	f, set := NewFactory(), testSettings(t)
	lp, err := f.CreateLogs(context.Background(), set, cfg, consumertest.NewNop())
	require.NoError(t, err)
	tp, err := f.CreateTraces(context.Background(), set, cfg, consumertest.NewNop())
	require.NoError(t, err)
	other := set
	other.ID = component.MustNewIDWithName("alert", t.Name()+"_other")
	op, err := f.CreateLogs(context.Background(), other, cfg, consumertest.NewNop())
	require.NoError(t, err)
	host := componenttest.NewNopHost()
	for _, c := range []component.Component{lp, tp, op} {
		require.NoError(t, c.Start(context.Background(), host))
	}
	// One event through the logs pipeline and one through the traces
	// pipeline reach the same rule: 2 >= 2.
	require.NoError(t, lp.ConsumeLogs(context.Background(), eventLogs("anvil.label.submit.stop", "", nil, 0)))
	td := ptrace.NewTraces()
	td.ResourceSpans().AppendEmpty().ScopeSpans().AppendEmpty().Spans().AppendEmpty().SetName("anvil.label.submit")
	require.NoError(t, tp.ConsumeTraces(context.Background(), td))
	hs := waitHits(t, in, 1)
	p := decode(t, hs[0].Body)
	assert.Equal(t, "firing", p["status"])
	assert.Equal(t, 2.0, p["value"])
	// The window passes: resolved.
	hs = waitHits(t, in, 2)
	assert.Equal(t, "resolved", decode(t, hs[1].Body)["status"])

	// The first Shutdown stops the shared engine (upstream's sharedcomponent),
	// the others are no-ops, and the id can be created again (a reload).
	before, err := acquire(set, cfg, wallClock{})
	require.NoError(t, err)
	require.NoError(t, lp.Shutdown(context.Background()))
	require.NoError(t, tp.Shutdown(context.Background()))
	require.NoError(t, op.Shutdown(context.Background()))
	after, err := acquire(set, cfg, wallClock{})
	require.NoError(t, err)
	assert.NotSame(t, before.engine(), after.engine())
	require.NoError(t, after.Shutdown(context.Background()))
	// The other id had its own engine: it saw no events, so sent nothing.
	assert.Len(t, in.Requests(), 2)
}

func TestStartFailsOnBadHTTPClientConfig(t *testing.T) {
	nc := NewNotifierConfig(notify.TypeWebhook)
	nc.Endpoint = "http://127.0.0.1:1"
	nc.TLS.CAFile = "/nonexistent/ca.pem"
	cfg := testConfig()
	cfg.Notifiers = []NotifierConfig{nc}
	p := newTestLogs(t, cfg)
	err := p.Start(context.Background(), componenttest.NewNopHost())
	require.Error(t, err)
	assert.Contains(t, err.Error(), "`notifiers[0]`")
	require.NoError(t, p.Shutdown(context.Background()))
}

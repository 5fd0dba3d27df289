package nodeidentityprocessor

import (
	"context"
	"errors"
	"os"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/processor/processortest"

	"github.com/anvil/anvilcol/processor/nodeidentityprocessor/internal/metadata"
)

// resources are what clients send: nothing, their own host.name (a string and
// an int), and a full identity of their own.
var resources = []map[string]any{
	{},
	{"host.name": "client-host"},
	{"host.name": 42},
	{"service.instance.id": "anvil@node-9", "service.name": "worker"},
}

// want is each resource after a processor with node_name "node-1" and the
// default service_name.
var want = []map[string]any{
	{"host.name": "node-1", "service.instance.id": "node-1", "service.name": "anvil"},
	{"host.name": "client-host", "service.instance.id": "client-host", "service.name": "anvil"},
	{"host.name": int64(42), "service.instance.id": "42", "service.name": "anvil"},
	{"host.name": "node-1", "service.instance.id": "anvil@node-9", "service.name": "worker"},
}

func fill(t *testing.T, res pcommon.Resource, attrs map[string]any) {
	require.NoError(t, res.Attributes().FromRaw(attrs))
}

func TestEverySignalGetsTheNodeIdentityWhereAbsent(t *testing.T) {
	cfg := &Config{NodeName: "node-1", ServiceName: "anvil"}
	f := NewFactory()
	set := processortest.NewNopSettings(metadata.Type)
	ctx := context.Background()

	t.Run("logs", func(t *testing.T) {
		sink := new(consumertest.LogsSink)
		p, err := f.CreateLogs(ctx, set, cfg, sink)
		require.NoError(t, err)
		ld := plog.NewLogs()
		for _, r := range resources {
			rl := ld.ResourceLogs().AppendEmpty()
			fill(t, rl.Resource(), r)
			rl.ScopeLogs().AppendEmpty().LogRecords().AppendEmpty().Body().SetStr("x")
		}
		require.NoError(t, p.ConsumeLogs(ctx, ld))
		got := sink.AllLogs()[0].ResourceLogs()
		for i := range want {
			assert.Equal(t, want[i], got.At(i).Resource().Attributes().AsRaw(), "resource %d", i)
		}
		assert.Equal(t, len(resources), sink.AllLogs()[0].LogRecordCount())
	})
	t.Run("metrics", func(t *testing.T) {
		sink := new(consumertest.MetricsSink)
		p, err := f.CreateMetrics(ctx, set, cfg, sink)
		require.NoError(t, err)
		md := pmetric.NewMetrics()
		for _, r := range resources {
			rm := md.ResourceMetrics().AppendEmpty()
			fill(t, rm.Resource(), r)
			rm.ScopeMetrics().AppendEmpty().Metrics().AppendEmpty().SetEmptyGauge().DataPoints().AppendEmpty().SetIntValue(1)
		}
		require.NoError(t, p.ConsumeMetrics(ctx, md))
		got := sink.AllMetrics()[0].ResourceMetrics()
		for i := range want {
			assert.Equal(t, want[i], got.At(i).Resource().Attributes().AsRaw(), "resource %d", i)
		}
	})
	t.Run("traces", func(t *testing.T) {
		sink := new(consumertest.TracesSink)
		p, err := f.CreateTraces(ctx, set, cfg, sink)
		require.NoError(t, err)
		td := ptrace.NewTraces()
		for _, r := range resources {
			rs := td.ResourceSpans().AppendEmpty()
			fill(t, rs.Resource(), r)
			rs.ScopeSpans().AppendEmpty().Spans().AppendEmpty().SetName("anvil.label.submit")
		}
		require.NoError(t, p.ConsumeTraces(ctx, td))
		got := sink.AllTraces()[0].ResourceSpans()
		for i := range want {
			assert.Equal(t, want[i], got.At(i).Resource().Attributes().AsRaw(), "resource %d", i)
		}
	})
}

func TestEmptyServiceNameLeavesServiceNameAlone(t *testing.T) {
	id, err := newIdentity(&Config{NodeName: "node-1"}, os.Hostname)
	require.NoError(t, err)
	res := pcommon.NewResource()
	id.apply(res)
	assert.Equal(t, map[string]any{"host.name": "node-1", "service.instance.id": "node-1"}, res.Attributes().AsRaw())
}

func TestEmptyNodeNameIsTheMachineHostName(t *testing.T) {
	host, err := os.Hostname()
	require.NoError(t, err)
	require.NotEmpty(t, host)
	id, err := newIdentity(createDefaultConfig().(*Config), os.Hostname)
	require.NoError(t, err)
	res := pcommon.NewResource()
	id.apply(res)
	assert.Equal(t, map[string]any{"host.name": host, "service.instance.id": host, "service.name": "anvil"}, res.Attributes().AsRaw())
}

func TestUnreadableHostNameFailsCreation(t *testing.T) {
	_, err := newIdentity(createDefaultConfig().(*Config), func() (string, error) { return "", errors.New("uname: no such device") })
	assert.EqualError(t, err, "node_name is empty and the machine's host name cannot be read: uname: no such device")

	_, err = newIdentity(createDefaultConfig().(*Config), func() (string, error) { return "", nil })
	assert.EqualError(t, err, "node_name is empty and the machine's host name is empty: set node_name")

	// A configured node_name never asks the machine.
	id, err := newIdentity(&Config{NodeName: "node-1"}, func() (string, error) { panic("hostname asked") })
	require.NoError(t, err)
	assert.Equal(t, "node-1", id.nodeName)
}

func BenchmarkApply(b *testing.B) {
	id := identity{nodeName: "node-1", serviceName: "anvil"}
	res := pcommon.NewResource()
	_ = res.Attributes().FromRaw(map[string]any{"telemetry.sdk.name": "anvil", "telemetry.sdk.language": "elixir"})
	b.ReportAllocs()
	for b.Loop() {
		r := pcommon.NewResource()
		res.CopyTo(r)
		id.apply(r)
	}
}

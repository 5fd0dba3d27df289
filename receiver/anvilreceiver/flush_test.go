package anvilreceiver

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/receiver/receivertest"

	"github.com/anvil/anvilcol/internal/clock/clocktest"
	"github.com/anvil/anvilcol/receiver/anvilreceiver/internal/metadata"
)

func TestMetricsFlushEveryIntervalOnTheClock(t *testing.T) {
	cfg := createDefaultConfig().(*Config)
	cfg.ServerConfig.NetAddr.Endpoint = "127.0.0.1:0"
	cfg.MetricsFlushInterval = 10 * time.Second
	clk := clocktest.NewFake(time.Time{})
	r, err := newAnvilReceiver(cfg, receivertest.NewNopSettings(metadata.Type), clk)
	require.NoError(t, err)
	sink := new(consumertest.MetricsSink)
	r.nextMetrics = sink
	require.NoError(t, r.Start(context.Background(), componenttest.NewNopHost()))
	t.Cleanup(func() { require.NoError(t, r.Shutdown(context.Background())) })

	body, err := os.ReadFile(filepath.Join("testdata", "catalog_batch.json"))
	require.NoError(t, err)
	a := post(t, "http://"+r.addr.String()+EventsPath, contentTypeJSON, body)
	require.Equal(t, 200, a.code, a.raw)

	require.Eventually(t, func() bool { _, ok := clk.NextWait(); return ok }, 5*time.Second, time.Millisecond, "the flush loop waits on the clock")
	clk.Advance(9 * time.Second)
	assert.Empty(t, sink.AllMetrics(), "nothing before the interval")
	clk.Advance(time.Second)
	require.Eventually(t, func() bool { return len(sink.AllMetrics()) == 1 }, 5*time.Second, time.Millisecond)
	assert.Positive(t, sink.AllMetrics()[0].DataPointCount())
}

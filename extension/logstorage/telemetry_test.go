package logstorage

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/extension/xextension/storage"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.opentelemetry.io/otel/sdk/metric/metricdata/metricdatatest"

	"github.com/anvil/anvilcol/extension/logstorage/internal/metadatatest"
)

func TestTelemetry(t *testing.T) {
	ctx := context.Background()
	ext, tt := newTelemetryExtension(t, &Config{Directory: t.TempDir(), SegmentSize: 4 << 10, MaxSize: 8 << 10})
	id := component.MustNewID("otlp")
	c, err := ext.GetClient(ctx, component.KindExporter, id, "logs")
	require.NoError(t, err)
	for i := range 3 {
		require.NoError(t, c.Set(ctx, itemKey(uint64(i)), make([]byte, 2000)))
	}
	require.ErrorIs(t, c.Set(ctx, "one more", make([]byte, 3000)), storage.ErrStorageFull)
	require.NoError(t, c.Close(ctx))

	// reopening replays the three records
	c, err = ext.GetClient(ctx, component.KindExporter, id, "logs")
	require.NoError(t, err)
	lc := c.(*client)

	client := attribute.String("client", "exporter_otlp__logs")
	opts := []metricdatatest.Option{metricdatatest.IgnoreTimestamp(), metricdatatest.IgnoreExemplars()}
	metadatatest.AssertEqualLogStorageKeys(t, tt, []metricdata.DataPoint[int64]{{Value: 3, Attributes: attribute.NewSet(client)}}, opts...)
	metadatatest.AssertEqualLogStorageSegments(t, tt, []metricdata.DataPoint[int64]{{Value: int64(len(lc.log.segs)), Attributes: attribute.NewSet(client)}}, opts...)
	metadatatest.AssertEqualLogStorageDiskBytes(t, tt, []metricdata.DataPoint[int64]{{Value: lc.log.disk, Attributes: attribute.NewSet(client)}}, opts...)
	metadatatest.AssertEqualLogStorageRecordsReplayed(t, tt, []metricdata.DataPoint[int64]{{Value: 3, Attributes: attribute.NewSet(client)}}, opts...)
	// every counter is there from the start, at 0 until it counts
	metadatatest.AssertEqualLogStorageWritesRefused(t, tt, []metricdata.DataPoint[int64]{
		{Value: 1, Attributes: attribute.NewSet(client, attribute.String("reason", "max_size"))},
		{Value: 0, Attributes: attribute.NewSet(client, attribute.String("reason", "disk_full"))},
		{Value: 0, Attributes: attribute.NewSet(client, attribute.String("reason", "write_error"))},
	}, opts...)
	metadatatest.AssertEqualLogStorageValuesCorrupt(t, tt, []metricdata.DataPoint[int64]{{Value: 0, Attributes: attribute.NewSet(client)}}, opts...)
	metadatatest.AssertEqualLogStorageCompactions(t, tt, []metricdata.DataPoint[int64]{{Value: 0, Attributes: attribute.NewSet(client)}}, opts...)
	metadatatest.AssertEqualLogStorageRecordsCorrupt(t, tt, []metricdata.DataPoint[int64]{{Value: 0, Attributes: attribute.NewSet(client)}}, opts...)
}

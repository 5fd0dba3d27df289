package logstorage

import (
	"context"
	"strconv"
	"testing"

	"github.com/open-telemetry/opentelemetry-collector-contrib/extension/storage/filestorage"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/extension/extensiontest"
	"go.opentelemetry.io/collector/extension/xextension/storage"
)

// BenchmarkQueuePattern compares log_storage with contrib's file_storage
// (bbolt, fsync off, its defaults) under the persistent queue's storage
// calls for one request (exporterhelper v0.155.0): Batch(Set qmv0, Set
// item), Batch(Set qmv0, Get item), Batch(Set qmv0, Delete item); 1 KiB
// items. backlog=N keeps N items queued (the gateway slower than the
// writer), so reads and deletes hit items written N requests earlier.
//
//	go test -run '^$' -bench BenchmarkQueuePattern -benchtime 100000x -count 3 ./extension/logstorage/
func BenchmarkQueuePattern(b *testing.B) {
	for _, backlog := range []int{0, 10000} {
		b.Run("store=log_storage/backlog="+strconv.Itoa(backlog), func(b *testing.B) {
			ext := newTestExtension(b, defaultSegmentSize, defaultMaxSize)
			runQueuePattern(b, newTestClient(b, ext), backlog)
		})
		b.Run("store=file_storage/backlog="+strconv.Itoa(backlog), func(b *testing.B) {
			runQueuePattern(b, newFileStorageClient(b), backlog)
		})
	}
}

func newFileStorageClient(b *testing.B) storage.Client {
	f := filestorage.NewFactory()
	cfg := f.CreateDefaultConfig().(*filestorage.Config)
	cfg.Directory = b.TempDir()
	cfg.Compaction.Directory = cfg.Directory
	ext, err := f.Create(context.Background(), extensiontest.NewNopSettings(f.Type()), cfg)
	require.NoError(b, err)
	require.NoError(b, ext.Start(context.Background(), nil))
	b.Cleanup(func() { require.NoError(b, ext.Shutdown(context.Background())) })
	c, err := ext.(storage.Extension).GetClient(context.Background(), component.KindExporter, component.MustNewID("otlp"), "logs")
	require.NoError(b, err)
	b.Cleanup(func() { require.NoError(b, c.Close(context.Background())) })
	return c
}

func runQueuePattern(b *testing.B, c storage.Client, backlog int) {
	ctx := context.Background()
	item := make([]byte, 1024)
	meta := make([]byte, 48)
	for i := range backlog {
		require.NoError(b, c.Batch(ctx, storage.SetOperation("qmv0", meta), storage.SetOperation(strconv.Itoa(i), item)))
	}
	b.SetBytes(int64(len(item)))
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		meta[0] = byte(i)
		if err := c.Batch(ctx, storage.SetOperation("qmv0", meta), storage.SetOperation(strconv.Itoa(i+backlog), item)); err != nil {
			b.Fatal(err)
		}
		get := storage.GetOperation(strconv.Itoa(i))
		if err := c.Batch(ctx, storage.SetOperation("qmv0", meta), get); err != nil || len(get.Value) != len(item) {
			b.Fatal(err, len(get.Value))
		}
		if err := c.Batch(ctx, storage.SetOperation("qmv0", meta), storage.DeleteOperation(strconv.Itoa(i))); err != nil {
			b.Fatal(err)
		}
	}
}

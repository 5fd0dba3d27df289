package logstorage

import (
	"context"
	"maps"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/extension/extensiontest"
	"go.opentelemetry.io/collector/extension/xextension/storage"

	"github.com/anvil/anvilcol/extension/logstorage/internal/metadatatest"
)

// newTestExtension starts a log_storage extension over a temporary directory.
func newTestExtension(t testing.TB, segmentSize, maxSize int64) *logStorage {
	t.Helper()
	cfg := &Config{Directory: t.TempDir(), SegmentSize: segmentSize, MaxSize: maxSize}
	require.NoError(t, cfg.Validate())
	ext, err := NewFactory().Create(context.Background(), extensiontest.NewNopSettings(typ), cfg)
	require.NoError(t, err)
	require.NoError(t, ext.Start(context.Background(), nil))
	t.Cleanup(func() { require.NoError(t, ext.Shutdown(context.Background())) })
	return ext.(*logStorage)
}

// newTelemetryExtension starts a log_storage extension with cfg whose
// telemetry tt records; both are shut down when the test ends.
func newTelemetryExtension(t *testing.T, cfg *Config) (*logStorage, *componenttest.Telemetry) {
	t.Helper()
	ctx := context.Background()
	tt := componenttest.NewTelemetry()
	t.Cleanup(func() { require.NoError(t, tt.Shutdown(ctx)) })
	ext, err := NewFactory().Create(ctx, metadatatest.NewSettings(tt), cfg)
	require.NoError(t, err)
	require.NoError(t, ext.Start(ctx, nil))
	t.Cleanup(func() { require.NoError(t, ext.Shutdown(ctx)) })
	return ext.(*logStorage), tt
}

func newTestClient(t testing.TB, ext *logStorage) *client {
	t.Helper()
	c, err := ext.GetClient(context.Background(), component.KindExporter, component.MustNewID("otlp"), "logs")
	require.NoError(t, err)
	return c.(*client)
}

// openLog opens a segment log over dir directly (no lock, no telemetry).
func openLog(t testing.TB, dir string, segmentSize, maxSize int64) (*segmentLog, replayStats) {
	t.Helper()
	l, st, err := openSegmentLog(dir, segmentSize, maxSize, osFileSystem)
	require.NoError(t, err)
	t.Cleanup(func() { _ = l.closeFiles() })
	return l, st
}

// state is the log's key -> value map as strings (large values read from
// the segment files); it panics if a value cannot be read.
func state(l *segmentLog) map[string]string {
	m := make(map[string]string, len(l.kv))
	for k := range l.kv {
		v, err := l.get(k, true)
		if err != nil {
			panic(err)
		}
		m[k] = string(v)
	}
	return m
}

// apply applies ops to a model map the way a storage.Client must.
func applyModel(m map[string]string, ops ...*storage.Operation) {
	for _, op := range ops {
		switch op.Type {
		case storage.Set:
			m[op.Key] = string(op.Value)
		case storage.Delete:
			delete(m, op.Key)
		}
	}
}

func cloneModel(m map[string]string) map[string]string { return maps.Clone(m) }

// copyDir copies dir's regular files into a new temporary directory: the
// disk as a kill -9 at this moment would leave it.
func copyDir(t testing.TB, dir string) string {
	t.Helper()
	dst := t.TempDir()
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	for _, e := range entries {
		if !e.Type().IsRegular() {
			continue
		}
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(filepath.Join(dst, e.Name()), b, 0o600))
	}
	return dst
}

func segmentFiles(t testing.TB, dir string) []uint64 {
	t.Helper()
	ids, err := listSegments(dir)
	require.NoError(t, err)
	return ids
}

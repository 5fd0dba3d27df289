package logstorage // import "github.com/anvil/anvilcol/extension/logstorage"

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/extension"
	"go.opentelemetry.io/collector/extension/xextension/storage"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.uber.org/zap"

	"github.com/anvil/anvilcol/extension/logstorage/internal/metadata"
)

// logStorage is the extension: it hands out one client per (kind, id,
// storage name), each over its own directory.
type logStorage struct {
	cfg       *Config
	logger    *zap.Logger
	telemetry *metadata.TelemetryBuilder
	fs        fileSystem

	mu      sync.Mutex
	clients map[string]*client // by directory
}

var _ storage.Extension = (*logStorage)(nil)

func newLogStorage(set extension.Settings, cfg *Config) (*logStorage, error) {
	tb, err := metadata.NewTelemetryBuilder(set.TelemetrySettings)
	if err != nil {
		return nil, err
	}
	ls := &logStorage{cfg: cfg, logger: set.Logger, telemetry: tb, fs: osFileSystem, clients: map[string]*client{}}
	err = errors.Join(
		tb.RegisterLogStorageDiskBytesCallback(ls.observe(func(l *segmentLog) int64 { return l.disk })),
		tb.RegisterLogStorageKeysCallback(ls.observe(func(l *segmentLog) int64 { return int64(len(l.kv)) })),
		tb.RegisterLogStorageSegmentsCallback(ls.observe(func(l *segmentLog) int64 { return int64(len(l.segs)) })),
	)
	if err != nil {
		tb.Shutdown()
		return nil, err
	}
	return ls, nil
}

// observe reports value for every open client.
func (ls *logStorage) observe(value func(*segmentLog) int64) metric.Int64Callback {
	return func(_ context.Context, o metric.Int64Observer) error {
		ls.mu.Lock()
		defer ls.mu.Unlock()
		for _, c := range ls.clients {
			c.mu.Lock()
			if c.log != nil {
				o.Observe(value(c.log), c.observeAttrs)
			}
			c.mu.Unlock()
		}
		return nil
	}
}

func (ls *logStorage) Start(context.Context, component.Host) error {
	if ls.cfg.CreateDirectory {
		if err := os.MkdirAll(ls.cfg.Directory, 0o750); err != nil {
			return fmt.Errorf("create_directory: %w", err)
		}
	}
	return nil
}

// Shutdown closes the clients their owners left open.
func (ls *logStorage) Shutdown(ctx context.Context) error {
	ls.mu.Lock()
	open := make([]*client, 0, len(ls.clients))
	for _, c := range ls.clients {
		open = append(open, c)
	}
	ls.mu.Unlock()
	var errs []error
	for _, c := range open {
		errs = append(errs, c.Close(ctx))
	}
	ls.telemetry.Shutdown()
	return errors.Join(errs...)
}

// GetClient opens (replays) the client's directory, named as file_storage
// names its file: <kind>_<type>_<name>[_<storage name>], unsafe characters
// escaped, and the SHA-256 of that if the name is too long.
func (ls *logStorage) GetClient(_ context.Context, kind component.Kind, id component.ID, storageName string) (storage.Client, error) {
	raw := fmt.Sprintf("%s_%s_%s", kindString(kind), id.Type(), id.Name())
	if storageName != "" {
		raw += "_" + storageName
	}
	name := sanitize(raw)
	if err := os.Mkdir(filepath.Join(ls.cfg.Directory, name), 0o750); err != nil && !os.IsExist(err) {
		if !errors.Is(err, syscall.ENAMETOOLONG) {
			return nil, err
		}
		hashed := sha256.Sum256([]byte(raw))
		name = hex.EncodeToString(hashed[:])
		ls.logger.Warn("client directory name too long, using its hash", zap.String("component", raw), zap.String("directory", name))
		if err := os.Mkdir(filepath.Join(ls.cfg.Directory, name), 0o750); err != nil && !os.IsExist(err) {
			return nil, err
		}
	}
	dir := filepath.Join(ls.cfg.Directory, name)

	ls.mu.Lock()
	defer ls.mu.Unlock()
	if _, ok := ls.clients[dir]; ok {
		return nil, fmt.Errorf("log_storage: a client for %s is already open", dir)
	}
	c, err := openClient(dir, name, ls)
	if err != nil {
		return nil, fmt.Errorf("log_storage: open %s: %w", dir, err)
	}
	ls.clients[dir] = c
	return c, nil
}

func (ls *logStorage) forget(c *client) {
	ls.mu.Lock()
	defer ls.mu.Unlock()
	if ls.clients[c.dir] == c {
		delete(ls.clients, c.dir)
	}
}

func (ls *logStorage) logReplay(name string, st replayStats, l *segmentLog) {
	attrs := metric.WithAttributeSet(attribute.NewSet(attribute.String("client", name)))
	ctx := context.Background()
	ls.telemetry.LogStorageRecordsReplayed.Add(ctx, st.records, attrs)
	ls.telemetry.LogStorageRecordsCorrupt.Add(ctx, st.corrupt, attrs)
	ls.telemetry.LogStorageTornTails.Add(ctx, st.tornTails, attrs)
	fields := []zap.Field{
		zap.String("client", name), zap.Int64("records", st.records), zap.Int("keys", len(l.kv)),
		zap.Int("segments", len(l.segs)), zap.Int64("disk_bytes", l.disk),
	}
	if st.corrupt > 0 || st.tornTails > 0 {
		ls.logger.Warn("log storage replayed with damage skipped",
			append(fields, zap.Int64("corrupt_records", st.corrupt), zap.Int64("torn_tails", st.tornTails))...)
		return
	}
	ls.logger.Info("log storage replayed", fields...)
}

func kindString(k component.Kind) string {
	switch k {
	case component.KindReceiver:
		return "receiver"
	case component.KindProcessor:
		return "processor"
	case component.KindExporter:
		return "exporter"
	case component.KindExtension:
		return "extension"
	case component.KindConnector:
		return "connector"
	default:
		return "other"
	}
}

// sanitize escapes every character but [A-Za-z0-9._-] as ~XXXX (and ~
// itself), exactly as file_storage does.
func sanitize(name string) string {
	var b strings.Builder
	for _, r := range name {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '-' || r == '_' {
			b.WriteRune(r)
		} else {
			fmt.Fprintf(&b, "~%04X", r)
		}
	}
	return b.String()
}

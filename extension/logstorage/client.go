package logstorage // import "github.com/anvil/anvilcol/extension/logstorage"

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"syscall"

	"go.opentelemetry.io/collector/extension/xextension/storage"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
)

var errClosed = errors.New("log_storage: client is closed")

// client is one component's storage.Client over its segment log.
type client struct {
	dir  string
	name string
	ext  *logStorage
	lock *os.File // flock'ed LOCK file: one process per directory

	observeAttrs metric.ObserveOption
	refusedAttrs map[string]metric.AddOption
	clientAttrs  metric.AddOption

	mu          sync.Mutex
	log         *segmentLog // nil once closed
	compactions int64       // already reported
}

var (
	_ storage.Client = (*client)(nil)
	_ storage.Walker = (*client)(nil)
)

func openClient(dir, name string, ext *logStorage) (*client, error) {
	lock, err := lockDir(filepath.Join(dir, lockFileName))
	if err != nil {
		return nil, err
	}
	log, st, err := openSegmentLog(dir, ext.cfg.SegmentSize, ext.cfg.MaxSize, ext.fs)
	if err != nil {
		_ = lock.Close()
		return nil, err
	}
	ext.logReplay(name, st, log)
	set := attribute.NewSet(attribute.String("client", name))
	c := &client{
		dir: dir, name: name, ext: ext, lock: lock, log: log,
		observeAttrs: metric.WithAttributeSet(set),
		clientAttrs:  metric.WithAttributeSet(set),
		refusedAttrs: map[string]metric.AddOption{},
	}
	// Every counter starts at 0, so that an increase() or rate() over it is
	// 0 from the client's start, not absent until the first refusal.
	ctx := context.Background()
	for _, reason := range []string{"max_size", "disk_full", "write_error"} {
		c.refusedAttrs[reason] = metric.WithAttributeSet(attribute.NewSet(
			attribute.String("client", name), attribute.String("reason", reason)))
		ext.telemetry.LogStorageWritesRefused.Add(ctx, 0, c.refusedAttrs[reason])
	}
	ext.telemetry.LogStorageValuesCorrupt.Add(ctx, 0, c.clientAttrs)
	ext.telemetry.LogStorageCompactions.Add(ctx, 0, c.clientAttrs)
	return c, nil
}

// Get returns a copy of key's value, nil if absent. A value damaged on disk
// after it was written is an error (errValueCorrupt), counted.
func (c *client) Get(ctx context.Context, key string) ([]byte, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.log == nil {
		return nil, errClosed
	}
	v, err := c.log.get(key, true)
	if errors.Is(err, errValueCorrupt) {
		c.ext.telemetry.LogStorageValuesCorrupt.Add(ctx, 1, c.clientAttrs)
	}
	return v, err
}

func (c *client) Set(ctx context.Context, key string, value []byte) error {
	return c.Batch(ctx, &storage.Operation{Type: storage.Set, Key: key, Value: value})
}

func (c *client) Delete(ctx context.Context, key string) error {
	return c.Batch(ctx, &storage.Operation{Type: storage.Delete, Key: key})
}

// Batch writes the Set and Delete ops as one record (one write(), applied
// whole or not at all on replay), then applies all ops in order; a Get op
// receives a copy of the value at its point of the batch.
func (c *client) Batch(ctx context.Context, ops ...*storage.Operation) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.log == nil {
		return errClosed
	}
	err := c.log.batch(ops)
	switch {
	case errors.Is(err, errValueCorrupt):
		c.ext.telemetry.LogStorageValuesCorrupt.Add(ctx, 1, c.clientAttrs)
	case err != nil:
		c.countRefusal(ctx, err)
	}
	if c.log.compactions != c.compactions {
		c.ext.telemetry.LogStorageCompactions.Add(ctx, c.log.compactions-c.compactions, c.clientAttrs)
		c.compactions = c.log.compactions
	}
	return err
}

func (c *client) countRefusal(ctx context.Context, err error) {
	reason := "write_error"
	switch {
	case errors.Is(err, errMaxSize):
		reason = "max_size"
	case errors.Is(err, syscall.ENOSPC):
		reason = "disk_full"
	}
	c.ext.telemetry.LogStorageWritesRefused.Add(ctx, 1, c.refusedAttrs[reason])
}

// Walk calls fn for every key in key order, then applies the ops fn
// returned as one batch (storage.Walker). Values are passed as stored, not
// checked against their CRC32C: a damaged value must not stop a component
// from listing what it holds at start (write_behind's replay); the Get that
// reads it for use reports it.
func (c *client) Walk(ctx context.Context, fn storage.WalkFunc) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.log == nil {
		return errClosed
	}
	keys := make([]string, 0, len(c.log.kv))
	for k := range c.log.kv {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var ops []*storage.Operation
	for _, k := range keys {
		if err := ctx.Err(); err != nil {
			return err
		}
		v, err := c.log.get(k, false) // as stored: a later Get checks it
		if err != nil {
			return err
		}
		more, err := fn(k, v)
		ops = append(ops, more...)
		if errors.Is(err, storage.SkipAll) {
			break
		}
		if err != nil {
			return err
		}
	}
	if len(ops) == 0 {
		return nil
	}
	return c.log.batch(ops)
}

// Close releases the segment file and the directory lock. Later calls
// return errClosed; closing twice is not an error.
func (c *client) Close(context.Context) error {
	c.mu.Lock()
	if c.log == nil {
		c.mu.Unlock()
		return nil
	}
	err := errors.Join(c.log.close(), c.lock.Close())
	c.log = nil
	c.mu.Unlock()
	c.ext.forget(c)
	return err
}

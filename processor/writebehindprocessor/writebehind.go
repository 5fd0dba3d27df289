package writebehindprocessor // import "github.com/anvil/anvilcol/processor/writebehindprocessor"

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/consumer/consumererror"
	"go.opentelemetry.io/collector/extension/xextension/storage"
	"go.opentelemetry.io/collector/processor"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.uber.org/zap"

	"github.com/anvil/anvilcol/internal/ratelog"
	"github.com/anvil/anvilcol/processor/writebehindprocessor/internal/metadata"
)

// keyPrefix prefixes every request's key; the rest is its sequence number in
// fixed-width hex, so keys sort in arrival order.
const keyPrefix = "wb/"

func seqKey(seq uint64) string { return fmt.Sprintf("%s%016x", keyPrefix, seq) }

func parseSeqKey(key string) (uint64, bool) {
	hex, ok := strings.CutPrefix(key, keyPrefix)
	if !ok || len(hex) != 16 {
		return 0, false
	}
	n, err := strconv.ParseUint(hex, 16, 64)
	return n, err == nil
}

var errStopped = errors.New("write_behind: processor is shut down")

// codec is what the write-behind core needs of one signal.
type codec[T any] struct {
	signal    string
	marshal   func(T) ([]byte, error)
	unmarshal func([]byte) (T, error)
	consume   func(context.Context, T) error
	count     func(T) int
}

// item is one kept request: in memory (data, size counted against the
// limit) or only in storage (read back when delivered).
type item[T any] struct {
	key   string
	data  T
	inMem bool
	size  int64
}

// writeBehind keeps each request in storage from consume until the next
// consumer accepted it.
type writeBehind[T any] struct {
	cfg    *Config
	set    processor.Settings
	codec  codec[T]
	client storage.Client

	mu       sync.Mutex
	spilled  []*item[T] // waiting in storage only, oldest first; spilled[head:] pending
	head     int
	memBytes int64 // encoded bytes of the requests being delivered
	inFlight int   // requests being delivered
	next     uint64
	stopped  bool

	grace  time.Duration   // shutdownGrace; shorter in tests
	ctx    context.Context // cancelled at shutdown: ends waits and retries
	cancel context.CancelFunc
	wg     sync.WaitGroup

	refusals *ratelog.Logger
	attrs    metric.MeasurementOption // processor and data_type, as exporterhelper labels its own
	dropped  metric.Int64Counter
	replayed metric.Int64Counter
	kept     metric.Int64Counter
}

func newWriteBehind[T any](cfg *Config, set processor.Settings, c codec[T]) *writeBehind[T] {
	w := &writeBehind[T]{cfg: cfg, set: set, codec: c, grace: shutdownGrace}
	w.refusals = ratelog.New(set.Logger, 10*time.Second)
	w.ctx, w.cancel = context.WithCancel(context.Background())
	w.attrs = metric.WithAttributes(attribute.String("processor", set.ID.String()), attribute.String("data_type", c.signal))
	meter := set.MeterProvider.Meter(metadata.ScopeName)
	w.dropped, _ = meter.Int64Counter("otelcol_processor_write_behind_dropped",
		metric.WithDescription("Items (log records, spans) the next consumer refused for good, or that could not be read back from storage."),
		metric.WithUnit("{item}"))
	w.replayed, _ = meter.Int64Counter("otelcol_processor_write_behind_replayed_requests",
		metric.WithDescription("Requests found in storage at start (not accepted downstream before a crash or a shutdown) and delivered again."),
		metric.WithUnit("{request}"))
	w.kept, _ = meter.Int64Counter("otelcol_processor_write_behind_spilled_requests",
		metric.WithDescription("Requests kept only in storage because memory_limit_mib was reached, read back when delivered."),
		metric.WithUnit("{request}"))
	return w
}

func (w *writeBehind[T]) Capabilities() consumer.Capabilities {
	// Mutates: the data is kept after consume returns and handed on later,
	// so a fan-out must give this processor its own copy.
	return consumer.Capabilities{MutatesData: true}
}

// Start opens the storage client, queues what an earlier run left in it,
// and starts the workers.
func (w *writeBehind[T]) Start(ctx context.Context, host component.Host) error {
	ext, ok := host.GetExtensions()[w.cfg.Storage]
	if !ok {
		return fmt.Errorf("write_behind: storage extension %q not found (list it under service::extensions)", w.cfg.Storage)
	}
	se, ok := ext.(storage.Extension)
	if !ok {
		return fmt.Errorf("write_behind: extension %q is not a storage extension", w.cfg.Storage)
	}
	client, err := se.GetClient(ctx, component.KindProcessor, w.set.ID, w.codec.signal)
	if err != nil {
		// log_storage refuses a second client of one name: the same
		// write_behind in two pipelines of one signal would share its keys.
		return fmt.Errorf("write_behind: storage client for %s (%s): %w (one write_behind in two %s pipelines needs a name of its own in each, e.g. write_behind/a and write_behind/b)",
			w.set.ID, w.codec.signal, err, w.codec.signal)
	}
	walker, ok := client.(storage.Walker)
	if !ok {
		_ = client.Close(ctx)
		return fmt.Errorf("write_behind: storage %q cannot list its keys (storage.Walker), so a restart could not find what to replay: use log_storage", w.cfg.Storage)
	}
	var found []*item[T]
	err = walker.Walk(ctx, func(key string, value []byte) ([]*storage.Operation, error) {
		seq, ok := parseSeqKey(key)
		if !ok {
			return nil, nil
		}
		w.next = max(w.next, seq+1)
		found = append(found, &item[T]{key: key, size: int64(len(value))})
		return nil, nil
	})
	if err != nil {
		_ = client.Close(ctx)
		return fmt.Errorf("write_behind: listing kept requests: %w", err)
	}
	w.client = client
	// Every counter starts at 0 (a series from the start, not from the
	// first drop).
	w.replayed.Add(ctx, int64(len(found)), w.attrs)
	w.dropped.Add(ctx, 0, w.attrs)
	w.kept.Add(ctx, 0, w.attrs)
	if len(found) > 0 {
		w.set.Logger.Info("Replaying requests kept before the last stop", zap.String("signal", w.codec.signal), zap.Int("requests", len(found)))
	}
	w.mu.Lock()
	w.spilled = found
	w.pump()
	w.mu.Unlock()
	return nil
}

// shutdownGrace is how long Shutdown lets requests being delivered finish
// (the exporters still run while processors stop: a batch waiting for its
// flush_timeout completes) before it cancels them.
const shutdownGrace = 5 * time.Second

// Shutdown stops taking requests, lets those being delivered finish for up
// to shutdownGrace (or until ctx ends), then cancels the rest: a request not
// accepted downstream stays in storage for the next start. Then it closes
// the client.
func (w *writeBehind[T]) Shutdown(ctx context.Context) error {
	w.mu.Lock()
	w.stopped = true
	w.mu.Unlock()
	done := make(chan struct{})
	go func() { w.wg.Wait(); close(done) }()
	grace := time.NewTimer(w.grace)
	select {
	case <-done:
	case <-grace.C:
	case <-ctx.Done():
	}
	grace.Stop()
	w.cancel()
	<-done
	if w.client == nil {
		return nil
	}
	return w.client.Close(ctx)
}

// consume keeps data in storage, then queues it for delivery. An error
// (storage full, shutting down) is retryable: a receiver answers 503.
func (w *writeBehind[T]) consume(ctx context.Context, data T) error {
	if w.codec.count(data) == 0 {
		return nil
	}
	b, err := w.codec.marshal(data)
	if err != nil {
		return consumererror.NewPermanent(fmt.Errorf("write_behind: encoding the %s request: %w", w.codec.signal, err))
	}
	w.mu.Lock()
	if w.stopped || w.client == nil {
		w.mu.Unlock()
		return errStopped
	}
	key := seqKey(w.next)
	w.next++
	w.mu.Unlock()
	if err := w.client.Set(ctx, key, b); err != nil {
		err = fmt.Errorf("write_behind: keeping the %s request: %w", w.codec.signal, err)
		w.refusals.Warn("refused", "Refusing requests: they cannot be kept in storage (the receiver answers 503)",
			zap.String("signal", w.codec.signal), zap.Error(err))
		return err
	}
	it := &item[T]{key: key, size: int64(len(b))}
	w.mu.Lock()
	defer w.mu.Unlock()
	switch {
	case w.stopped: // kept: the next start delivers it
	case w.head == len(w.spilled) && w.fits(it.size):
		it.data, it.inMem = data, true
		w.start(it)
	default:
		w.spilled = append(w.spilled, it)
		w.kept.Add(ctx, 1, w.attrs)
	}
	return nil
}

// fits reports whether a request of size may start now: in-flight requests
// are bounded by memory_limit_mib (encoded bytes; one request always may)
// and max_in_flight. Called with mu held.
func (w *writeBehind[T]) fits(size int64) bool {
	return w.inFlight < w.cfg.MaxInFlight &&
		(w.inFlight == 0 || w.memBytes+size <= int64(w.cfg.MemoryLimitMiB)<<20)
}

// start delivers it on a goroutine of its own. Called with mu held.
func (w *writeBehind[T]) start(it *item[T]) {
	w.memBytes += it.size
	w.inFlight++
	w.wg.Add(1)
	go w.deliver(it)
}

// pump starts the oldest requests waiting in storage while they fit.
// Called with mu held.
func (w *writeBehind[T]) pump() {
	for !w.stopped && w.head < len(w.spilled) && w.fits(w.spilled[w.head].size) {
		it := w.spilled[w.head]
		w.spilled[w.head] = nil
		w.head++
		w.start(it)
	}
	if w.head == len(w.spilled) { // drained: reuse the slice from its start
		w.spilled, w.head = w.spilled[:0], 0
	}
}

// finish gives a delivered (or abandoned) request's bytes back and starts
// what waits in storage.
func (w *writeBehind[T]) finish(it *item[T]) {
	var zero T
	w.mu.Lock()
	it.data, it.inMem = zero, false
	w.memBytes -= it.size
	w.inFlight--
	w.pump()
	w.mu.Unlock()
	w.wg.Done()
}

// deliver hands it to the next consumer until accepted (or refused for
// good), then deletes it from storage. At shutdown it stops and leaves the
// item in storage for the next start.
func (w *writeBehind[T]) deliver(it *item[T]) {
	defer w.finish(it)
	for {
		data, ok := w.load(it)
		if !ok {
			return
		}
		err := w.codec.consume(w.ctx, data)
		if err == nil {
			break
		}
		if consumererror.IsPermanent(err) {
			w.dropped.Add(context.Background(), int64(w.codec.count(data)), w.attrs)
			w.set.Logger.Error("The next consumer refused a kept request for good; dropped",
				zap.String("signal", w.codec.signal), zap.Int("items", w.codec.count(data)), zap.Error(err))
			break
		}
		// The next consumer may have moved data out (a batcher does): retry
		// from storage (its bytes stay counted).
		var zero T
		it.data, it.inMem = zero, false
		select {
		case <-w.ctx.Done():
			return
		case <-time.After(w.cfg.RetryInterval):
		}
	}
	if err := w.client.Delete(context.Background(), it.key); err != nil {
		w.set.Logger.Error("Deleting a delivered request from storage failed; it will be delivered again after a restart",
			zap.String("key", it.key), zap.Error(err))
	}
}

// load returns it's data, read back from storage when not in memory. A
// value that is missing or does not decode is dropped (counted, deleted).
func (w *writeBehind[T]) load(it *item[T]) (T, bool) {
	if it.inMem {
		return it.data, true
	}
	var zero T
	b, err := w.client.Get(w.ctx, it.key)
	if err == nil && b == nil {
		err = errors.New("not in storage")
	}
	var data T
	if err == nil {
		data, err = w.codec.unmarshal(b)
	}
	if err != nil {
		if w.ctx.Err() != nil {
			return zero, false
		}
		w.dropped.Add(context.Background(), 1, w.attrs)
		w.set.Logger.Error("A kept request could not be read back; dropped",
			zap.String("signal", w.codec.signal), zap.String("key", it.key), zap.Error(err))
		_ = w.client.Delete(context.Background(), it.key)
		return zero, false
	}
	return data, true
}

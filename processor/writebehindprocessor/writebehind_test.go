package writebehindprocessor

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/consumer/consumererror"
	"go.opentelemetry.io/collector/extension"
	"go.opentelemetry.io/collector/extension/extensiontest"
	"go.opentelemetry.io/collector/extension/xextension/storage"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/processor"
	"go.opentelemetry.io/collector/processor/processortest"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/anvil/anvilcol/extension/logstorage"
	"github.com/anvil/anvilcol/processor/writebehindprocessor/internal/metadata"
)

var storageID = component.MustNewID("log_storage")

type host struct {
	component.Host
	exts map[component.ID]component.Component
}

func (h host) GetExtensions() map[component.ID]component.Component { return h.exts }

// newStorage starts a log_storage over dir; maxSize 0 keeps the default.
func newStorage(t *testing.T, dir string, maxSize int64) (extension.Extension, host) {
	t.Helper()
	f := logstorage.NewFactory()
	cfg := f.CreateDefaultConfig().(*logstorage.Config)
	cfg.Directory = dir
	cfg.SegmentSize = 1 << 20
	if maxSize > 0 {
		cfg.MaxSize = maxSize
	}
	ext, err := f.Create(context.Background(), extensiontest.NewNopSettings(f.Type()), cfg)
	require.NoError(t, err)
	require.NoError(t, ext.Start(context.Background(), componenttest.NewNopHost()))
	return ext, host{Host: componenttest.NewNopHost(), exts: map[component.ID]component.Component{storageID: ext}}
}

// sink is a next consumer: fn decides each call's answer.
type sink struct {
	mu   sync.Mutex
	got  []plog.Logs
	fn   func(ctx context.Context, n int) error // n: calls so far, from 1
	call int
}

func (s *sink) Capabilities() consumer.Capabilities { return consumer.Capabilities{} }

func (s *sink) ConsumeLogs(ctx context.Context, ld plog.Logs) error {
	s.mu.Lock()
	s.call++
	n := s.call
	fn := s.fn
	s.mu.Unlock()
	if fn != nil {
		if err := fn(ctx, n); err != nil {
			return err
		}
	}
	cp := plog.NewLogs()
	ld.CopyTo(cp)
	s.mu.Lock()
	s.got = append(s.got, cp)
	s.mu.Unlock()
	return nil
}

// heldSink accepts each call once release is closed (or fails it when
// the call's context ends first): the next hop is slow until then.
func heldSink(release <-chan struct{}) *sink {
	return &sink{fn: func(ctx context.Context, _ int) error {
		select {
		case <-release:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}}
}

// bodies returns the first record's body of every request received, sorted by arrival.
func (s *sink) bodies() map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	m := map[string]int{}
	for _, ld := range s.got {
		lrs := ld.ResourceLogs().At(0).ScopeLogs().At(0).LogRecords()
		for i := range lrs.Len() {
			m[lrs.At(i).Body().Str()]++
		}
	}
	return m
}

func request(name string, records, bodyBytes int) plog.Logs {
	ld := plog.NewLogs()
	lrs := ld.ResourceLogs().AppendEmpty().ScopeLogs().AppendEmpty().LogRecords()
	pad := make([]byte, bodyBytes)
	for i := range pad {
		pad[i] = 'a' + byte(i%26)
	}
	for i := range records {
		lr := lrs.AppendEmpty()
		lr.Body().SetStr(fmt.Sprintf("%s-%d", name, i))
		lr.Attributes().PutStr("pad", string(pad))
	}
	return ld
}

// newProcessorWithTelemetry is newProcessor with its telemetry recorded in
// the returned Telemetry.
func newProcessorWithTelemetry(t *testing.T, cfg *Config, next consumer.Logs) (processor.Logs, *componenttest.Telemetry) {
	t.Helper()
	tel := componenttest.NewTelemetry()
	t.Cleanup(func() { require.NoError(t, tel.Shutdown(context.Background())) })
	set := processortest.NewNopSettings(metadata.Type)
	set.TelemetrySettings = tel.NewTelemetrySettings()
	p, err := NewFactory().CreateLogs(context.Background(), set, cfg, next)
	require.NoError(t, err)
	return p, tel
}

func newProcessor(t *testing.T, cfg *Config, next consumer.Logs) processor.Logs {
	t.Helper()
	f := NewFactory()
	p, err := f.CreateLogs(context.Background(), processortest.NewNopSettings(metadata.Type), cfg, next)
	require.NoError(t, err)
	return p
}

func testConfig() *Config {
	cfg := createDefaultConfig().(*Config)
	cfg.Storage = storageID
	cfg.RetryInterval = 10 * time.Millisecond
	return cfg
}

// keys lists what the processor's client holds in storage.
func keys(t *testing.T, ext extension.Extension) []string {
	t.Helper()
	c, err := ext.(storage.Extension).GetClient(context.Background(), component.KindProcessor, component.NewID(metadata.Type), "logs")
	require.NoError(t, err)
	defer c.Close(context.Background())
	var ks []string
	require.NoError(t, c.(storage.Walker).Walk(context.Background(), func(k string, _ []byte) ([]*storage.Operation, error) {
		ks = append(ks, k)
		return nil, nil
	}))
	return ks
}

func TestDeliversFromMemoryAndDeletesWhatWasAccepted(t *testing.T) {
	dir := t.TempDir()
	ext, h := newStorage(t, dir, 0)
	s := &sink{}
	p := newProcessor(t, testConfig(), s)
	require.NoError(t, p.Start(context.Background(), h))
	for i := range 50 {
		require.NoError(t, p.ConsumeLogs(context.Background(), request(fmt.Sprintf("r%d", i), 3, 10)))
	}
	require.Eventually(t, func() bool { return len(s.bodies()) == 150 }, 5*time.Second, 5*time.Millisecond)
	require.NoError(t, p.Shutdown(context.Background()))
	for _, n := range s.bodies() {
		require.Equal(t, 1, n, "a record delivered twice")
	}
	require.Empty(t, keys(t, ext), "accepted requests stay in storage")
	require.NoError(t, ext.Shutdown(context.Background()))
}

func TestWhatWasNeverAcceptedIsReplayedOnTheNextStart(t *testing.T) {
	dir := t.TempDir()
	ext, h := newStorage(t, dir, 0)
	// The next hop is down: every call waits until shutdown cancels it.
	down := &sink{fn: func(ctx context.Context, _ int) error { <-ctx.Done(); return ctx.Err() }}
	p := newProcessor(t, testConfig(), down)
	p.(*logsProcessor).grace = 50 * time.Millisecond
	require.NoError(t, p.Start(context.Background(), h))
	for i := range 40 {
		require.NoError(t, p.ConsumeLogs(context.Background(), request(fmt.Sprintf("r%d", i), 2, 10)))
	}
	require.NoError(t, p.Shutdown(context.Background()))
	require.Len(t, keys(t, ext), 40)
	require.NoError(t, ext.Shutdown(context.Background()))

	ext2, h2 := newStorage(t, dir, 0)
	up := &sink{}
	p2 := newProcessor(t, testConfig(), up)
	require.NoError(t, p2.Start(context.Background(), h2))
	require.Eventually(t, func() bool { return len(up.bodies()) == 80 }, 5*time.Second, 5*time.Millisecond)
	// New requests after a replay get new keys (the sequence goes on).
	require.NoError(t, p2.ConsumeLogs(context.Background(), request("after", 1, 10)))
	require.Eventually(t, func() bool { return up.bodies()["after-0"] == 1 }, 5*time.Second, 5*time.Millisecond)
	require.NoError(t, p2.Shutdown(context.Background()))
	for b, n := range up.bodies() {
		require.Equal(t, 1, n, "%s delivered %d times", b, n)
	}
	require.Empty(t, keys(t, ext2))
	require.NoError(t, ext2.Shutdown(context.Background()))
}

func TestBeyondTheMemoryLimitRequestsAreReadBackFromStorage(t *testing.T) {
	ext, h := newStorage(t, t.TempDir(), 0)
	release := make(chan struct{})
	s := heldSink(release)
	cfg := testConfig()
	cfg.MemoryLimitMiB = 1
	p := newProcessor(t, cfg, s)
	require.NoError(t, p.Start(context.Background(), h))
	// 8 requests of ~300 KiB: at most 3 fit the 1 MiB limit.
	for i := range 8 {
		require.NoError(t, p.ConsumeLogs(context.Background(), request(fmt.Sprintf("r%d", i), 3, 100<<10)))
	}
	wb := p.(*logsProcessor).writeBehind
	wb.mu.Lock()
	mem, inFlight, waiting := wb.memBytes, wb.inFlight, len(wb.spilled)-wb.head
	wb.mu.Unlock()
	require.LessOrEqual(t, mem, int64(1<<20))
	require.Equal(t, 8, inFlight+waiting)
	require.GreaterOrEqual(t, waiting, 5, "requests went in flight past the memory limit")
	close(release)
	require.Eventually(t, func() bool { return len(s.bodies()) == 24 }, 5*time.Second, 5*time.Millisecond)
	require.NoError(t, p.Shutdown(context.Background()))
	for i := range 8 {
		for j := range 3 {
			require.Equal(t, 1, s.bodies()[fmt.Sprintf("r%d-%d", i, j)])
		}
	}
	require.Empty(t, keys(t, ext))
	require.Zero(t, wb.memBytes)
	require.NoError(t, ext.Shutdown(context.Background()))
}

func TestARetryableRefusalIsRetriedFromStorage(t *testing.T) {
	ext, h := newStorage(t, t.TempDir(), 0)
	s := &sink{fn: func(_ context.Context, n int) error {
		if n <= 2 {
			return errors.New("queue is full")
		}
		return nil
	}}
	cfg := testConfig()
	cfg.MaxInFlight = 1
	p := newProcessor(t, cfg, s)
	require.NoError(t, p.Start(context.Background(), h))
	ld := request("r", 2, 10)
	require.NoError(t, p.ConsumeLogs(context.Background(), ld))
	// The next consumer empties what it refused (a batcher moves data out):
	// the retry must not send that emptied copy.
	ld.ResourceLogs().RemoveIf(func(plog.ResourceLogs) bool { return true })
	require.Eventually(t, func() bool { return len(s.bodies()) == 2 }, 5*time.Second, 5*time.Millisecond)
	require.NoError(t, p.Shutdown(context.Background()))
	require.Equal(t, map[string]int{"r-0": 1, "r-1": 1}, s.bodies())
	require.Empty(t, keys(t, ext))
	require.NoError(t, ext.Shutdown(context.Background()))
}

func TestAPermanentRefusalIsDroppedCountedAndDeleted(t *testing.T) {
	ext, h := newStorage(t, t.TempDir(), 0)
	s := &sink{fn: func(context.Context, int) error { return consumererror.NewPermanent(errors.New("bad data")) }}
	p, tel := newProcessorWithTelemetry(t, testConfig(), s)
	require.NoError(t, p.Start(context.Background(), h))
	require.NoError(t, p.ConsumeLogs(context.Background(), request("r", 4, 10)))
	require.Eventually(t, func() bool { s.mu.Lock(); defer s.mu.Unlock(); return s.call == 1 }, 5*time.Second, 5*time.Millisecond)
	require.NoError(t, p.Shutdown(context.Background())) // the worker deletes before it stops
	require.Empty(t, keys(t, ext))
	m, err := tel.GetMetric("otelcol_processor_write_behind_dropped")
	require.NoError(t, err)
	sum := m.Data.(metricdata.Sum[int64])
	require.Equal(t, int64(4), sum.DataPoints[0].Value)
	dt, _ := sum.DataPoints[0].Attributes.Value("data_type")
	require.Equal(t, "logs", dt.AsString())
	id, _ := sum.DataPoints[0].Attributes.Value("processor")
	require.Equal(t, "write_behind", id.AsString())
	require.NoError(t, ext.Shutdown(context.Background()))
}

func TestAFullStorageRefusesTheRequestRetryably(t *testing.T) {
	ext, h := newStorage(t, t.TempDir(), 2<<20) // two 1 MiB segments
	down := &sink{fn: func(ctx context.Context, _ int) error { <-ctx.Done(); return ctx.Err() }}
	p := newProcessor(t, testConfig(), down)
	p.(*logsProcessor).grace = 50 * time.Millisecond
	require.NoError(t, p.Start(context.Background(), h))
	var err error
	accepted := 0
	for i := 0; i < 100 && err == nil; i++ {
		if err = p.ConsumeLogs(context.Background(), request(fmt.Sprintf("r%d", i), 1, 100<<10)); err == nil {
			accepted++
		}
	}
	require.Error(t, err, "a full storage accepted every request")
	require.ErrorIs(t, err, storage.ErrStorageFull)
	require.False(t, consumererror.IsPermanent(err), "a full storage must be retryable (503), not permanent")
	require.NoError(t, p.Shutdown(context.Background()))
	require.Len(t, keys(t, ext), accepted, "every accepted request is kept, none of the refused")
	require.NoError(t, ext.Shutdown(context.Background()))
}

func TestOneProcessorInTwoPipelinesOfASignalFailsToStartWithAHint(t *testing.T) {
	_, h := newStorage(t, t.TempDir(), 0)
	first := newProcessor(t, testConfig(), &sink{})
	require.NoError(t, first.Start(context.Background(), h))
	t.Cleanup(func() { _ = first.Shutdown(context.Background()) })
	second := newProcessor(t, testConfig(), &sink{})
	err := second.Start(context.Background(), h)
	require.ErrorContains(t, err, "already open")
	require.ErrorContains(t, err, "one write_behind in two logs pipelines needs a name of its own")
}

func TestStartFailsWithoutAListableStorage(t *testing.T) {
	p := newProcessor(t, testConfig(), &sink{})
	err := p.Start(context.Background(), host{Host: componenttest.NewNopHost()})
	require.ErrorContains(t, err, `storage extension "log_storage" not found`)
}

func TestShutdownLetsDeliveriesInFlightFinish(t *testing.T) {
	ext, h := newStorage(t, t.TempDir(), 0)
	// The exporter takes 200 ms per request (a batch waiting for its flush).
	s := &sink{fn: func(ctx context.Context, _ int) error {
		select {
		case <-time.After(200 * time.Millisecond):
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}}
	p := newProcessor(t, testConfig(), s)
	require.NoError(t, p.Start(context.Background(), h))
	for i := range 3 {
		require.NoError(t, p.ConsumeLogs(context.Background(), request(fmt.Sprintf("r%d", i), 1, 10)))
	}
	require.Eventually(t, func() bool { s.mu.Lock(); defer s.mu.Unlock(); return s.call == 3 }, 5*time.Second, time.Millisecond)
	require.NoError(t, p.Shutdown(context.Background()))
	// Accepted during the grace, so deleted: nothing is sent twice after a
	// graceful restart.
	require.Len(t, s.bodies(), 3)
	require.Empty(t, keys(t, ext))
	require.NoError(t, ext.Shutdown(context.Background()))
}

func TestEveryRequestThatFitsIsInFlightAtOnce(t *testing.T) {
	// Behind a batching exporter that waits for a batch of 30 requests (its
	// min_size), each request's consume returns only once 30 are in flight:
	// deliveries must not be capped by a worker count below that.
	ext, h := newStorage(t, t.TempDir(), 0)
	var waiting sync.WaitGroup
	waiting.Add(30)
	batch := make(chan struct{})
	go func() { waiting.Wait(); close(batch) }()
	s := &sink{fn: func(ctx context.Context, _ int) error {
		waiting.Done()
		select {
		case <-batch:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}}
	p := newProcessor(t, testConfig(), s)
	p.(*logsProcessor).grace = 50 * time.Millisecond
	require.NoError(t, p.Start(context.Background(), h))
	for i := range 30 {
		require.NoError(t, p.ConsumeLogs(context.Background(), request(fmt.Sprintf("r%d", i), 1, 10)))
	}
	require.Eventually(t, func() bool { return len(s.bodies()) == 30 }, 5*time.Second, 5*time.Millisecond,
		"the batch never filled: fewer than 30 requests were in flight")
	require.NoError(t, p.Shutdown(context.Background()))
	require.Empty(t, keys(t, ext))
	require.NoError(t, ext.Shutdown(context.Background()))
}

// TestARequestDamagedOnDiskIsDroppedAndCountedNotDeliveredAltered: a
// request waiting in storage (beyond memory_limit_mib) whose bytes in the
// segment file change is read back as an error (log_storage checks each
// value's CRC32C), dropped, counted and deleted; the others are delivered.
// Without the check, the damage (one byte of a body) decoded as a valid,
// altered request.
func TestARequestDamagedOnDiskIsDroppedAndCountedNotDeliveredAltered(t *testing.T) {
	dir := t.TempDir()
	ext, h := newStorage(t, dir, 0)
	release := make(chan struct{})
	s := heldSink(release)
	cfg := testConfig()
	cfg.MemoryLimitMiB = 1
	p, tel := newProcessorWithTelemetry(t, cfg, s)
	require.NoError(t, p.Start(context.Background(), h))
	// 8 requests of ~300 KiB: at most 3 in memory, r7 waits in storage.
	for i := range 8 {
		require.NoError(t, p.ConsumeLogs(context.Background(), request(fmt.Sprintf("r%d", i), 3, 100<<10)))
	}
	segs, err := filepath.Glob(filepath.Join(dir, "*", "*.seg"))
	require.NoError(t, err)
	seg, at := "", -1
	for _, name := range segs {
		data, err := os.ReadFile(name)
		require.NoError(t, err)
		if i := bytes.Index(data, []byte("r7-1")); i >= 0 {
			seg, at = name, i
		}
	}
	require.NotEmpty(t, seg, "r7 is not in any segment file")
	f, err := os.OpenFile(seg, os.O_RDWR, 0)
	require.NoError(t, err)
	_, err = f.WriteAt([]byte("X"), int64(at)+3) // r7-1 becomes r7-X
	require.NoError(t, err)
	require.NoError(t, f.Close())

	close(release)
	require.Eventually(t, func() bool { return len(s.bodies()) == 21 }, 5*time.Second, 5*time.Millisecond)
	require.NoError(t, p.Shutdown(context.Background()))
	got := s.bodies()
	require.NotContains(t, got, "r7-X", "the damaged request was delivered altered")
	for i := range 7 {
		for j := range 3 {
			require.Equal(t, 1, got[fmt.Sprintf("r%d-%d", i, j)])
		}
	}
	m, err := tel.GetMetric("otelcol_processor_write_behind_dropped")
	require.NoError(t, err)
	require.Equal(t, int64(1), m.Data.(metricdata.Sum[int64]).DataPoints[0].Value, "one request that could not be read back")
	require.Empty(t, keys(t, ext), "the damaged request is deleted")
	require.NoError(t, ext.Shutdown(context.Background()))
}

// TestEveryCounterStartsAtZero: each counter is a series from the start
// (rate() and increase() read 0, not "no data", until something counts).
func TestEveryCounterStartsAtZero(t *testing.T) {
	ext, h := newStorage(t, t.TempDir(), 0)
	p, tel := newProcessorWithTelemetry(t, testConfig(), &sink{})
	require.NoError(t, p.Start(context.Background(), h))
	for _, name := range []string{"otelcol_processor_write_behind_dropped", "otelcol_processor_write_behind_replayed_requests", "otelcol_processor_write_behind_spilled_requests"} {
		m, err := tel.GetMetric(name)
		require.NoError(t, err, name)
		dps := m.Data.(metricdata.Sum[int64]).DataPoints
		require.Len(t, dps, 1, name)
		require.Zero(t, dps[0].Value, name)
	}
	require.NoError(t, p.Shutdown(context.Background()))
	require.NoError(t, ext.Shutdown(context.Background()))
}

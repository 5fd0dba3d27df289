package logstorage

import (
	"context"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/config/configoptional"
	"go.opentelemetry.io/collector/exporter"
	"go.opentelemetry.io/collector/exporter/exporterhelper"
	"go.opentelemetry.io/collector/exporter/exportertest"
	"go.opentelemetry.io/collector/pdata/plog"
)

var storageID = component.MustNewID("log_storage")

type extensionHost struct {
	exts map[component.ID]component.Component
}

func (h extensionHost) GetExtensions() map[component.ID]component.Component { return h.exts }

// receivedLogs records the "seq" attribute of every log record pushed.
type receivedLogs struct {
	mu   sync.Mutex
	seqs map[int64]int
	hold chan struct{} // pushes block until closed, when not nil
}

func (r *receivedLogs) push(ctx context.Context, ld plog.Logs) error {
	if r.hold != nil {
		select {
		case <-r.hold:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	rls := ld.ResourceLogs()
	for i := range rls.Len() {
		sls := rls.At(i).ScopeLogs()
		for j := range sls.Len() {
			lrs := sls.At(j).LogRecords()
			for k := range lrs.Len() {
				seq, _ := lrs.At(k).Attributes().Get("seq")
				r.seqs[seq.Int()]++
			}
		}
	}
	return nil
}

func (r *receivedLogs) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.seqs)
}

func request(seq int) plog.Logs {
	ld := plog.NewLogs()
	lr := ld.ResourceLogs().AppendEmpty().ScopeLogs().AppendEmpty().LogRecords().AppendEmpty()
	lr.Attributes().PutInt("seq", int64(seq))
	lr.Body().SetStr(string(make([]byte, 1024)))
	return ld
}

// newQueuedExporter is a logs exporter with the collector's persistent
// sending queue over storage, one request per queue item (no batching).
func newQueuedExporter(t *testing.T, ext component.Component, r *receivedLogs, consumers int) exporter.Logs {
	qCfg := exporterhelper.NewDefaultQueueConfig()
	qCfg.StorageID = &storageID
	qCfg.QueueSize = 100_000
	qCfg.NumConsumers = consumers
	qCfg.Batch = configoptional.None[exporterhelper.BatchConfig]()
	set := exportertest.NewNopSettings(component.MustNewType("otlp"))
	set.ID = component.MustNewID("otlp") // the same queue across restarts
	exp, err := exporterhelper.NewLogs(context.Background(), set, &struct{}{}, r.push, exporterhelper.WithQueue(configoptional.Some(qCfg)))
	require.NoError(t, err)
	require.NoError(t, exp.Start(context.Background(), extensionHost{exts: map[component.ID]component.Component{storageID: ext}}))
	return exp
}

func onlyClient(t *testing.T, ext *logStorage) *client {
	ext.mu.Lock()
	defer ext.mu.Unlock()
	require.Len(t, ext.clients, 1)
	for _, c := range ext.clients {
		return c
	}
	return nil
}

// TestPersistentQueueKeepsDiskBounded drives the collector's real persistent
// queue (exporterhelper) with 34,000 1-KiB requests, about 100,000 storage
// calls: every request is delivered, old segments are deleted as the queue
// drains, and the disk stays within a few segments of the data queued.
func TestPersistentQueueKeepsDiskBounded(t *testing.T) {
	const requests = 34_000
	const segmentSize = 256 << 10
	ext := newTestExtension(t, segmentSize, 64<<20)
	r := &receivedLogs{seqs: map[int64]int{}}
	exp := newQueuedExporter(t, ext, r, 4)
	c := onlyClient(t, ext)

	// The design's bound (README, "Disk use"): sealed segments hold less
	// than four times their live data after each rotation, plus the active
	// segment and what acknowledgements freed since the last rotation. A
	// loaded machine lets a backlog build (more live data), so the bound is
	// relative to the live data at each sample, not a constant.
	var maxDisk, maxExcess, maxOver int64
	for i := range requests {
		require.NoError(t, exp.ConsumeLogs(context.Background(), request(i)))
		if i%100 == 0 {
			c.mu.Lock()
			var live int64
			for _, s := range c.log.segs {
				live += s.liveBytes
			}
			maxDisk = max(maxDisk, c.log.disk)
			maxExcess = max(maxExcess, c.log.disk-live)
			maxOver = max(maxOver, c.log.disk-(4*live+4*segmentSize))
			c.mu.Unlock()
		}
	}
	require.Eventually(t, func() bool { return r.count() == requests }, 30*time.Second, 10*time.Millisecond)
	c.mu.Lock()
	compactions, copied, written := c.log.compactions, c.log.copiedBytes, c.log.written
	c.mu.Unlock()
	require.NoError(t, exp.Shutdown(context.Background())) // waits for the last acknowledgements

	t.Logf("max disk %d bytes, max disk beyond live data %d bytes, %d compactions copied %d of %d bytes written",
		maxDisk, maxExcess, compactions, copied, written)
	assert.LessOrEqual(t, maxOver, int64(0), "disk within 4 x live data + 4 segments")
	ids := segmentFiles(t, c.dir)
	assert.LessOrEqual(t, len(ids), 2, "a drained queue leaves at most the active segment and one more")
	assert.Greater(t, ids[0], uint64(100), "about 140 segments were written and deleted")
}

// TestPersistentQueueSurvivesKill9: the disk as kill -9 leaves it, with
// requests queued and some of them dispatched but not acknowledged, is
// replayed by a new process whose queue then delivers every request.
func TestPersistentQueueSurvivesKill9(t *testing.T) {
	const requests = 500
	ext := newTestExtension(t, 16<<10, 64<<20)
	blocked := &receivedLogs{seqs: map[int64]int{}, hold: make(chan struct{})}
	exp := newQueuedExporter(t, ext, blocked, 2)
	for i := range requests {
		require.NoError(t, exp.ConsumeLogs(context.Background(), request(i)))
	}
	c := onlyClient(t, ext)
	c.mu.Lock()
	killed := copyDir(t, c.dir) // kill -9 now: 2 requests dispatched, the rest queued
	c.mu.Unlock()
	close(blocked.hold)
	require.NoError(t, exp.Shutdown(context.Background()))

	ext2 := newTestExtension(t, 16<<10, 64<<20)
	require.NoError(t, os.Rename(killed, filepath.Join(ext2.cfg.Directory, c.name)))
	r := &receivedLogs{seqs: map[int64]int{}}
	exp2 := newQueuedExporter(t, ext2, r, 2)
	require.Eventually(t, func() bool { return r.count() == requests }, 10*time.Second, 10*time.Millisecond)
	require.NoError(t, exp2.Shutdown(context.Background()))
}

// TestPersistentQueueRefusedAtMaxSize: at max_size the queue's offer fails
// (the receiver answers 503, nothing is acknowledged and dropped), while the
// queued data can still be read, delivered and acknowledged; then offers
// succeed again.
func TestPersistentQueueRefusedAtMaxSize(t *testing.T) {
	ext := newTestExtension(t, 16<<10, 64<<10)
	blocked := &receivedLogs{seqs: map[int64]int{}, hold: make(chan struct{})}
	exp := newQueuedExporter(t, ext, blocked, 2)
	accepted := 0
	var refusal error
	for i := range 200 {
		if err := exp.ConsumeLogs(context.Background(), request(i)); err != nil {
			refusal = err
			break
		}
		accepted++
	}
	require.Error(t, refusal, "the queue must refuse once max_size is reached")
	assert.ErrorContains(t, refusal, "max_size")
	c := onlyClient(t, ext)
	c.mu.Lock()
	assert.LessOrEqual(t, c.log.disk, int64(64<<10))
	c.mu.Unlock()

	close(blocked.hold) // the gateway is back
	require.Eventually(t, func() bool { return blocked.count() == accepted }, 10*time.Second, 10*time.Millisecond)
	require.NoError(t, exp.ConsumeLogs(context.Background(), request(1000)), "space is given back as the queue drains")
	require.Eventually(t, func() bool { return blocked.count() == accepted+1 }, 10*time.Second, 10*time.Millisecond)
	require.NoError(t, exp.Shutdown(context.Background()))
}

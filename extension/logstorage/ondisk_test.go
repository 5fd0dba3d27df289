package logstorage

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"os"
	"runtime"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/extension/xextension/storage"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.opentelemetry.io/otel/sdk/metric/metricdata/metricdatatest"

	"github.com/anvil/anvilcol/extension/logstorage/internal/metadatatest"
)

// fillValue fills b with bytes that depend on i and on the position.
func fillValue(b []byte, i int) {
	for j := 0; j+8 <= len(b); j += 8 {
		binary.LittleEndian.PutUint64(b[j:], uint64(i)<<32|uint64(j))
	}
}

func heapInuse() uint64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapInuse
}

// TestLargeValuesLiveOnDisk: a queue holding 200 MiB of 64 KiB items (a
// gateway outage) keeps the Go heap small: the values are in the segment
// files (the page cache), and every Get returns the exact bytes.
func TestLargeValuesLiveOnDisk(t *testing.T) {
	if testing.Short() || raceEnabled {
		t.Skip("writes and reads 200 MiB")
	}
	const (
		itemSize  = 64 << 10
		items     = 200 << 20 / itemSize
		heapBound = 32 << 20
	)
	ctx := context.Background()
	c := newTestClient(t, newTestExtension(t, defaultSegmentSize, defaultMaxSize))
	item := make([]byte, itemSize)
	want := make([]byte, itemSize)
	meta := func(w, r int) []byte { return fmt.Appendf(nil, "w=%d r=%d", w, r) }

	for i := range items {
		fillValue(item, i)
		require.NoError(t, c.Batch(ctx, storage.SetOperation("qmv0", meta(i+1, 0)), storage.SetOperation(itemKey(uint64(i)), item)))
	}
	held := heapInuse()
	t.Logf("%d items of %d bytes held: heap in use %.1f MiB, disk %.1f MiB", items, itemSize, float64(held)/(1<<20), float64(c.log.disk)/(1<<20))
	require.Less(t, held, uint64(heapBound), "the values must not be on the heap")
	require.GreaterOrEqual(t, c.log.disk, int64(items*itemSize))

	// read and acknowledge FIFO, as the queue does
	for i := range items {
		get := storage.GetOperation(itemKey(uint64(i)))
		require.NoError(t, c.Batch(ctx, storage.SetOperation("qmv0", meta(items, i+1)), get))
		fillValue(want, i)
		require.True(t, bytes.Equal(want, get.Value), "item %d", i)
		require.NoError(t, c.Batch(ctx, storage.SetOperation("qmv0", meta(items, i+1)), storage.DeleteOperation(itemKey(uint64(i)))))
		if i == items/2 {
			mid := heapInuse()
			t.Logf("half acknowledged: heap in use %.1f MiB", float64(mid)/(1<<20))
			require.Less(t, mid, uint64(heapBound))
		}
	}
	assert.Len(t, c.log.kv, 1)
	assert.LessOrEqual(t, len(c.log.segs), 2, "acknowledged segments are given back")
}

// TestLargeValueAfterCompactionAndReopen: a large value is read from where
// it is after compaction moved it, and after replay, from a sealed segment
// opened for reading on first use.
func TestLargeValueAfterCompactionAndReopen(t *testing.T) {
	ctx := context.Background()
	ext := newTestExtension(t, 4<<10, 1<<20)
	c := newTestClient(t, ext)
	pinned := make([]byte, 1000)
	fillValue(pinned, 7)
	require.NoError(t, c.Set(ctx, "pinned", pinned))
	e := c.log.kv["pinned"]
	require.Empty(t, e.small, "a large value is not held in memory")
	require.Equal(t, len(pinned), e.size)
	first := e.seg.id

	// queue traffic until compaction has moved the pinned value and the
	// segment now holding it is sealed
	q := newQueuePattern(5)
	for i := 0; ; i++ {
		require.Less(t, i, 100000)
		require.NoError(t, c.Batch(ctx, q.next()...))
		if e := c.log.kv["pinned"]; e.seg.id != first && e.seg != c.log.activeSeg() {
			break
		}
	}
	require.Positive(t, c.log.compactions)
	_, stillThere := os.Stat(segmentPath(c.dir, first))
	require.True(t, os.IsNotExist(stillThere), "the segment it was written to is deleted")
	got, err := c.Get(ctx, "pinned")
	require.NoError(t, err)
	require.Equal(t, pinned, got, "after compaction")

	require.NoError(t, c.Close(ctx))
	c = newTestClient(t, ext)
	e = c.log.kv["pinned"]
	require.Empty(t, e.small)
	require.NotSame(t, c.log.activeSeg(), e.seg)
	require.Nil(t, e.seg.f, "a replayed sealed segment is opened on first read")
	got, err = c.Get(ctx, "pinned")
	require.NoError(t, err)
	require.Equal(t, pinned, got, "after replay")
	require.NotNil(t, e.seg.f)
	op := storage.GetOperation("pinned")
	require.NoError(t, c.Batch(ctx, op))
	require.Equal(t, pinned, op.Value)
}

// faultyFile fails ReadAt on demand: with an error (readErr) or short
// without one (short).
type faultyFile struct {
	*os.File
	readErr *error
	short   *bool
}

func (f faultyFile) ReadAt(b []byte, off int64) (int, error) {
	if *f.readErr != nil {
		return 0, *f.readErr
	}
	if *f.short {
		return f.File.ReadAt(b[:len(b)/2], off)
	}
	return f.File.ReadAt(b, off)
}

// TestReadFailureIsAnError: a large value that cannot be read fails Get,
// a Batch holding a Get of it (writing nothing) and Walk, with the error;
// small values are still served; compaction skips what it cannot read; once
// reads work again everything is there.
func TestReadFailureIsAnError(t *testing.T) {
	ctx := context.Background()
	var readErr error
	short := false
	ext := newTestExtension(t, 4<<10, 1<<20)
	ext.fs.openFile = func(name string, flag int, perm os.FileMode) (segmentFile, error) {
		f, err := os.OpenFile(name, flag, perm)
		if err != nil {
			return nil, err
		}
		return faultyFile{File: f, readErr: &readErr, short: &short}, nil
	}
	c := newTestClient(t, ext)
	big := make([]byte, 1000)
	fillValue(big, 1)
	require.NoError(t, c.Batch(ctx, storage.SetOperation("big", big), storage.SetOperation("small", []byte("s")), storage.SetOperation("qmv0", []byte("0"))))
	disk := c.log.disk

	for _, fault := range []string{"EIO", "short read"} {
		readErr, short = nil, false
		if fault == "EIO" {
			readErr = syscall.EIO
		} else {
			short = true
		}
		v, err := c.Get(ctx, "big")
		require.Error(t, err, fault)
		require.Nil(t, v)
		if fault == "EIO" {
			require.ErrorIs(t, err, syscall.EIO)
		} else {
			require.ErrorIs(t, err, io.ErrUnexpectedEOF)
		}
		require.ErrorContains(t, err, `key "big"`)

		v, err = c.Get(ctx, "small")
		require.NoError(t, err)
		require.Equal(t, []byte("s"), v)

		get := storage.GetOperation("big")
		err = c.Batch(ctx, storage.SetOperation("qmv0", []byte("1")), get)
		require.Error(t, err, fault)
		require.Nil(t, get.Value)
		require.Equal(t, disk, c.log.disk, "a batch whose read fails writes nothing")
		v, _ = c.Get(ctx, "qmv0")
		require.Equal(t, []byte("0"), v, "and applies nothing")

		require.Error(t, c.Walk(ctx, func(string, []byte) ([]*storage.Operation, error) { return nil, nil }))
	}

	// rotations while the big value cannot be read: compaction leaves it
	readErr, short = syscall.EIO, false
	q := newQueuePattern(3)
	q.itemSize = 100 // small items: served from memory
	for len(c.log.segs) < 4 {
		require.NoError(t, c.Batch(ctx, q.next()...))
	}
	require.Zero(t, c.log.compactions, "the value could not be copied")
	require.Equal(t, uint64(1), c.log.kv["big"].seg.id)

	readErr = nil
	for c.log.compactions == 0 {
		require.NoError(t, c.Batch(ctx, q.next()...))
	}
	v, err := c.Get(ctx, "big")
	require.NoError(t, err)
	require.Equal(t, big, v)
	require.NotEqual(t, uint64(1), c.log.kv["big"].seg.id, "moved once it could be read")
	require.NoError(t, c.Close(ctx))
	c = newTestClient(t, ext)
	v, err = c.Get(ctx, "big")
	require.NoError(t, err)
	require.Equal(t, big, v)
}

// TestValueDamagedAfterItWasWrittenFailsGet: a large value whose bytes in
// its segment file change after the write (a stray write, bad sectors)
// fails Get and a Batch's Get op with errValueCorrupt, naming the key,
// offset and file, and is counted, not as a refused write; Walk still
// lists it (a component's replay must start); compaction moves it with
// the sum it was written with, so it is still reported; Delete removes it.
func TestValueDamagedAfterItWasWrittenFailsGet(t *testing.T) {
	ctx := context.Background()
	ext, tt := newTelemetryExtension(t, &Config{Directory: t.TempDir(), SegmentSize: 8 << 10, MaxSize: 1 << 20})
	c := newTestClient(t, ext)

	big, other := make([]byte, 1000), make([]byte, 1000)
	fillValue(big, 1)
	fillValue(other, 2)
	require.NoError(t, c.Set(ctx, "big", big))
	require.NoError(t, c.Set(ctx, "other", other))
	e := c.log.kv["big"]
	first := e.seg.id
	f, err := os.OpenFile(segmentPath(c.dir, e.seg.id), os.O_RDWR, 0)
	require.NoError(t, err)
	b := []byte{0}
	_, err = f.ReadAt(b, e.off+500)
	require.NoError(t, err)
	b[0] ^= 0x40
	_, err = f.WriteAt(b, e.off+500)
	require.NoError(t, err)
	require.NoError(t, f.Close())

	v, err := c.Get(ctx, "big")
	require.ErrorIs(t, err, errValueCorrupt)
	require.Nil(t, v)
	require.ErrorContains(t, err, `key "big"`)
	require.ErrorContains(t, err, segmentPath(c.dir, first))
	get := storage.GetOperation("big")
	require.ErrorIs(t, c.Batch(ctx, storage.SetOperation("qmv0", []byte("1")), get), errValueCorrupt)
	require.Nil(t, get.Value)
	v, err = c.Get(ctx, "other")
	require.NoError(t, err)
	require.Equal(t, other, v, "the value beside it is intact")

	var walked []string
	require.NoError(t, c.Walk(ctx, func(k string, _ []byte) ([]*storage.Operation, error) {
		walked = append(walked, k)
		return nil, nil
	}))
	require.Equal(t, []string{"big", "other"}, walked, "Walk lists a damaged value")

	client := attribute.NewSet(attribute.String("client", "exporter_otlp__logs"))
	opts := []metricdatatest.Option{metricdatatest.IgnoreTimestamp(), metricdatatest.IgnoreExemplars()}
	metadatatest.AssertEqualLogStorageValuesCorrupt(t, tt, []metricdata.DataPoint[int64]{{Value: 2, Attributes: client}}, opts...)
	refused := []metricdata.DataPoint[int64]{}
	for _, reason := range []string{"max_size", "disk_full", "write_error"} {
		refused = append(refused, metricdata.DataPoint[int64]{Value: 0, Attributes: attribute.NewSet(client.ToSlice()[0], attribute.String("reason", reason))})
	}
	metadatatest.AssertEqualLogStorageWritesRefused(t, tt, refused, opts...) // a damaged value is not a refused write

	// Items written and acknowledged until the segment holding the damaged
	// value is compacted away: the damage moves with its sum.
	require.NoError(t, c.Delete(ctx, "other"))
	item := make([]byte, 1000)
	for i := 0; c.log.kv["big"].seg.id == first; i++ {
		require.Less(t, i, 200, "the damaged value was never compacted")
		require.NoError(t, c.Set(ctx, itemKey(uint64(i)), item))
		require.NoError(t, c.Delete(ctx, itemKey(uint64(i))))
	}
	require.Positive(t, c.log.compactions)
	_, err = c.Get(ctx, "big")
	require.ErrorIs(t, err, errValueCorrupt, "after compaction")

	require.NoError(t, c.Delete(ctx, "big"))
	v, err = c.Get(ctx, "big")
	require.NoError(t, err)
	require.Nil(t, v)
}

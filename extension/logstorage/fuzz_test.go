package logstorage

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/extension/xextension/storage"
)

// realSegment is a segment as the log writes it: the queue pattern's calls.
func realSegment(t testing.TB, calls int) []byte {
	dir := t.TempDir()
	l, _ := openLog(t, dir, 1<<20, 1<<30)
	q := newQueuePattern(5)
	q.itemSize = 40
	for range calls {
		require.NoError(t, l.batch(q.next()))
	}
	require.NoError(t, l.batch([]*storage.Operation{storage.SetOperation("", nil), storage.DeleteOperation("nothing")}))
	b, err := os.ReadFile(lastSegmentPath(t, dir))
	require.NoError(t, err)
	return b
}

// FuzzReplay: whatever bytes the segments hold, opening never panics or
// hangs, every record it applies is one that verified, damage is counted,
// and the log opened can be written and reopened to the same state.
func FuzzReplay(f *testing.F) {
	seg := realSegment(f, 12)
	f.Add(seg, []byte{})
	f.Add(seg[:len(seg)-5], seg[:30])
	for _, off := range []int{0, 3, 5, 9, 13, 20, len(seg) / 2, len(seg) - 1} {
		flipped := append([]byte(nil), seg...)
		flipped[off] ^= 0xFF
		f.Add(flipped, seg)
		f.Add(seg, flipped)
	}
	f.Add([]byte{}, []byte{})
	f.Add(magic[:], append(magic[:], 0, 0, 0, 0, 0, 0, 0, 0))
	f.Add(append(append([]byte(nil), seg[:40]...), seg...), []byte("garbage"))

	f.Fuzz(func(t *testing.T, older, last []byte) {
		dir := t.TempDir()
		require.NoError(t, os.WriteFile(segmentPath(dir, 1), older, 0o600))
		require.NoError(t, os.WriteFile(segmentPath(dir, 2), last, 0o600))
		l, st, err := openSegmentLog(dir, 4<<10, 1<<30, osFileSystem)
		require.NoError(t, err)
		defer l.closeFiles()

		// every region that is not a verified record was counted
		if st.records == 0 && st.corrupt == 0 && st.tornTails == 0 {
			require.Empty(t, l.kv)
		}
		if len(last) > 0 && st.tornTails == 0 {
			// the last segment ends on a whole record
			_, n, ok := lastRecordEnd(last)
			require.True(t, ok && n == len(last), "last segment has a bad tail that was not cut")
		}
		for _, s := range l.segs {
			require.GreaterOrEqual(t, s.live, 0)
			require.GreaterOrEqual(t, s.liveBytes, int64(0))
		}
		want := state(l)
		require.NoError(t, l.batch([]*storage.Operation{storage.SetOperation("fuzz", []byte("after"))}))
		want["fuzz"] = "after"
		require.NoError(t, l.active.Close())
		r, st2, err := openSegmentLog(dir, 4<<10, 1<<30, osFileSystem)
		require.NoError(t, err)
		defer r.closeFiles()
		require.Equal(t, want, state(r))
		require.Zero(t, st2.tornTails, "nothing torn after a clean append")
	})
}

// lastRecordEnd scans data as replay does and reports where its last
// verified record ends.
func lastRecordEnd(data []byte) (int, int, bool) {
	r := scanSegment(data, func([]byte, int) error { return nil })
	return int(r.records), r.validEnd, !r.tail
}

// TestEveryFlippedByteCostsOneRecord: a real segment with any one byte
// flipped replays with exactly one damaged record counted (a corrupt one in
// the middle, or the torn tail at the end), never more lost.
func TestEveryFlippedByteCostsOneRecord(t *testing.T) {
	seg := realSegment(t, 12)
	for off := range seg {
		dir := t.TempDir()
		flipped := append([]byte(nil), seg...)
		flipped[off] ^= 0xFF
		require.NoError(t, os.WriteFile(segmentPath(dir, 1), flipped, 0o600))
		require.NoError(t, os.WriteFile(filepath.Join(dir, "x"), nil, 0o600))
		l, st, err := openSegmentLog(dir, 4<<10, 1<<30, osFileSystem)
		require.NoError(t, err, fmt.Sprint(off))
		require.Equal(t, int64(1), st.corrupt+st.tornTails, "a flipped byte at %d damages exactly one record", off)
		require.Equal(t, int64(12), st.records, "the other records of the 13 replay (flip at %d)", off)
		require.NoError(t, l.active.Close())
	}
}

// TestResyncIsNotQuadratic: a damaged segment full of magics followed by
// large lengths (what the fuzzer made) is scanned in linear time: the
// header CRC rejects each false candidate without reading its length.
func TestResyncIsNotQuadratic(t *testing.T) {
	chunk := append(magic[:], 0xFF, 0xFF, 0x0F, 0, 1, 2, 3, 4, 5, 6, 7, 8)
	var data []byte
	for len(data) < 4<<20 {
		data = append(data, chunk...)
	}
	start := time.Now()
	r := scanSegment(data, func([]byte, int) error { return nil })
	require.True(t, r.tail)
	require.Less(t, time.Since(start), 2*time.Second, "resync over 4 MiB of false candidates")
}

package logstorage

import (
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/extension/xextension/storage"
)

func set(k, v string) *storage.Operation { return storage.SetOperation(k, []byte(v)) }
func del(k string) *storage.Operation    { return storage.DeleteOperation(k) }

func lastSegmentPath(t testing.TB, dir string) string {
	ids := segmentFiles(t, dir)
	require.NotEmpty(t, ids)
	return segmentPath(dir, ids[len(ids)-1])
}

// TestTornTailAtEveryByte: kill -9 in the middle of the last write leaves
// any prefix of its record on disk. Replay must give exactly the state
// before that record, count one torn tail, cut it off, and append after it.
func TestTornTailAtEveryByte(t *testing.T) {
	dir := t.TempDir()
	l, _ := openLog(t, dir, 1<<20, 1<<30)
	model := map[string]string{}
	for i := range 20 {
		ops := []*storage.Operation{set(fmt.Sprintf("item%d", i), fmt.Sprintf("value %d", i)), set("meta", fmt.Sprint(i))}
		require.NoError(t, l.batch(ops))
		applyModel(model, ops...)
	}
	before := l.activeSeg().size
	last := []*storage.Operation{del("item3"), set("meta", "last"), set("item20", "a value long enough to tear in many places")}
	require.NoError(t, l.batch(last))
	full := l.activeSeg().size
	require.NoError(t, l.active.Close())

	for cut := before; cut < full; cut++ {
		d := copyDir(t, dir)
		require.NoError(t, os.Truncate(lastSegmentPath(t, d), cut))
		r, st := openLog(t, d, 1<<20, 1<<30)
		require.Equal(t, model, state(r), "cut at %d", cut)
		wantTorn := int64(0)
		if cut > before {
			wantTorn = 1
		}
		require.Equal(t, replayStats{records: 20, tornTails: wantTorn}, st, "cut at %d", cut)
		fi, err := os.Stat(lastSegmentPath(t, d))
		require.NoError(t, err)
		require.Equal(t, before, fi.Size(), "the torn bytes are truncated away")

		// appending after the cut and replaying again finds no damage
		require.NoError(t, r.batch([]*storage.Operation{set("after", "x")}))
		require.NoError(t, r.active.Close())
		r2, st2 := openLog(t, d, 1<<20, 1<<30)
		want := cloneModel(model)
		want["after"] = "x"
		require.Equal(t, want, state(r2))
		require.Equal(t, replayStats{records: 21}, st2)
	}
}

// TestBadCRCOnLastRecordIsATornTail: the last record whole but with a
// flipped byte (the kernel wrote pages out of order before a crash) is
// treated like a torn write.
func TestBadCRCOnLastRecordIsATornTail(t *testing.T) {
	dir := t.TempDir()
	l, _ := openLog(t, dir, 1<<20, 1<<30)
	require.NoError(t, l.batch([]*storage.Operation{set("a", "1")}))
	before := l.activeSeg().size
	require.NoError(t, l.batch([]*storage.Operation{set("a", "2"), set("b", "2")}))
	require.NoError(t, l.active.Close())
	flipByte(t, lastSegmentPath(t, dir), before+headerSize+2)
	r, st := openLog(t, dir, 1<<20, 1<<30)
	assert.Equal(t, map[string]string{"a": "1"}, state(r))
	assert.Equal(t, replayStats{records: 1, tornTails: 1}, st)
}

func flipByte(t *testing.T, path string, off int64) {
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	b[off] ^= 0x5A
	require.NoError(t, os.WriteFile(path, b, 0o600))
}

// TestCorruptRecordInTheMiddleIsSkipped: damage anywhere but the tail costs
// that record only (the batch is lost whole, never half), is counted, and
// every record after it is still applied.
func TestCorruptRecordInTheMiddleIsSkipped(t *testing.T) {
	for _, where := range []string{"magic", "length", "payload crc", "header crc", "payload"} {
		t.Run(where, func(t *testing.T) {
			dir := t.TempDir()
			l, _ := openLog(t, dir, 1<<20, 1<<30)
			batches := [][]*storage.Operation{
				{set("a", "1"), set("meta", "1")},
				{set("b", "2"), set("meta", "2")},
				{del("a"), set("c", "3"), set("meta", "3")}, // damaged
				{set("d", "4"), set("meta", "4")},
			}
			var offsets []int64
			for _, ops := range batches {
				offsets = append(offsets, l.activeSeg().size)
				require.NoError(t, l.batch(ops))
			}
			require.NoError(t, l.active.Close())
			off := offsets[2] + map[string]int64{"magic": 1, "length": 5, "payload crc": 9, "header crc": 13, "payload": headerSize + 3}[where]
			flipByte(t, lastSegmentPath(t, dir), off)

			r, st := openLog(t, dir, 1<<20, 1<<30)
			want := map[string]string{}
			for i, ops := range batches {
				if i != 2 {
					applyModel(want, ops...)
				}
			}
			assert.Equal(t, want, state(r))
			assert.Equal(t, replayStats{records: 3, corrupt: 1}, st)
		})
	}
}

// TestCorruptTailOfAnOlderSegmentIsCounted: damage at the end of a segment
// that is not the last is skipped and counted, never truncated, and later
// segments still replay.
func TestCorruptTailOfAnOlderSegmentIsCounted(t *testing.T) {
	dir := t.TempDir()
	l, _ := openLog(t, dir, 4<<10, 1<<30)
	model := map[string]string{}
	for i := 0; len(segmentFiles(t, dir)) < 3; i++ {
		ops := []*storage.Operation{set(fmt.Sprintf("item%d", i), string(make([]byte, 500)))}
		require.NoError(t, l.batch(ops))
		applyModel(model, ops...)
	}
	require.NoError(t, l.active.Close())
	first := segmentPath(dir, segmentFiles(t, dir)[0])
	fi, err := os.Stat(first)
	require.NoError(t, err)
	require.NoError(t, os.Truncate(first, fi.Size()-3)) // its last record cut short
	r, st := openLog(t, dir, 4<<10, 1<<30)
	assert.Equal(t, int64(1), st.corrupt)
	assert.Zero(t, st.tornTails)
	assert.Len(t, state(r), len(model)-1)
}

// TestReopenEqualsWhatWasAppended: a kill -9 right after any call returned
// (data written, whatever the process did next in memory) replays to the
// state the calls produced, through rotations and compactions.
func TestReopenEqualsWhatWasAppended(t *testing.T) {
	dir := t.TempDir()
	l, _ := openLog(t, dir, 4<<10, 1<<30)
	model := map[string]string{}
	q := newQueuePattern(200)
	checked := 0
	for i := range 3000 {
		ops := q.next()
		require.NoError(t, l.batch(ops))
		applyModel(model, ops...)
		require.Equal(t, model, state(l))
		if i%97 == 0 {
			r, st := openLog(t, copyDir(t, dir), 4<<10, 1<<30)
			require.Equal(t, model, state(r), "after op %d", i)
			require.Zero(t, st.corrupt+st.tornTails)
			checked++
		}
	}
	require.Positive(t, l.compactions, "the pattern should make compactions happen")
	require.Greater(t, segmentFiles(t, dir)[0], uint64(5), "old segments should be deleted")
}

// TestKillDuringSegmentDeletionAndCompaction: at every segment deletion the
// disk is copied as a kill -9 just before that unlink would leave it (older
// dead segments gone, this and newer present); if a compaction record was
// just written, copies with that record cut short at several offsets are
// made too. Every copy must replay to the live state of that moment.
func TestKillDuringSegmentDeletionAndCompaction(t *testing.T) {
	dir := t.TempDir()
	var l *segmentLog
	var kills, tornSnapshots int
	lastCompactions := int64(0)
	fsys := osFileSystem
	fsys.remove = func(name string) error {
		want := state(l)
		d := copyDir(t, dir)
		r, st := openLog(t, d, 4<<10, 1<<30)
		require.Equal(t, want, state(r), "kill before removing %s", filepath.Base(name))
		require.Zero(t, st.corrupt+st.tornTails)
		kills++
		if l.compactions != lastCompactions {
			lastCompactions = l.compactions
			// the compaction record is the first record of the active segment
			seg := l.activeSeg()
			for _, cut := range []int64{1, headerSize, headerSize + 1, seg.size / 2, seg.size - 1} {
				if cut <= 0 || cut >= seg.size {
					continue
				}
				d := copyDir(t, dir)
				require.NoError(t, os.Truncate(segmentPath(d, seg.id), cut))
				r, st := openLog(t, d, 4<<10, 1<<30)
				require.Equal(t, want, state(r), "compaction record cut at %d", cut)
				require.Equal(t, int64(1), st.tornTails)
				tornSnapshots++
			}
		}
		return os.Remove(name)
	}
	var err error
	l, _, err = openSegmentLog(dir, 4<<10, 1<<30, fsys)
	require.NoError(t, err)
	defer l.closeFiles()

	// a long-lived key written once pins the first segment until compaction
	require.NoError(t, l.batch([]*storage.Operation{set("pinned", "forever")}))
	q := newQueuePattern(20)
	for range 1500 {
		require.NoError(t, l.batch(q.next()))
	}
	require.Positive(t, kills)
	require.Positive(t, tornSnapshots, "compactions must have happened")
	assert.Equal(t, "forever", state(l)["pinned"])
	assert.LessOrEqual(t, len(l.segs), 4, "segments must not pile up behind the pinned key")
}

// TestRemoveFailureKeepsTheSegment: a segment that cannot be unlinked stays
// accounted for and is retried on the next write.
func TestRemoveFailureKeepsTheSegment(t *testing.T) {
	dir := t.TempDir()
	fail := true
	fsys := osFileSystem
	fsys.remove = func(name string) error {
		if fail {
			return syscall.EBUSY
		}
		return os.Remove(name)
	}
	l, _, err := openSegmentLog(dir, 4<<10, 1<<30, fsys)
	require.NoError(t, err)
	defer l.closeFiles()
	q := newQueuePattern(5)
	for i := 0; len(l.segs) < 4; i++ {
		require.Less(t, i, 10000, "segments that cannot be removed must stay listed")
		require.NoError(t, l.batch(q.next()))
	}
	assert.Positive(t, l.removeFails)
	fail = false
	require.NoError(t, l.batch(q.next()))
	assert.True(t, len(l.segs) == 1 || l.segs[0].live > 0, "dead oldest segments are removed once unlink works")
	r, _ := openLog(t, copyDir(t, dir), 4<<10, 1<<30)
	assert.Equal(t, state(l), state(r))
}

// TestUnknownFilesAreIgnored: other files in a client's directory are
// neither read nor deleted.
func TestUnknownFilesAreIgnored(t *testing.T) {
	dir := t.TempDir()
	l, _ := openLog(t, dir, 4<<10, 1<<30)
	require.NoError(t, l.batch([]*storage.Operation{set("a", "1")}))
	require.NoError(t, l.active.Close())
	for _, name := range []string{"notes.txt", "00000000000000000001.seg.bak", "1.seg", "0000000000000000000x.seg", "00000000000000000000.seg", lockFileName} {
		require.NoError(t, os.WriteFile(filepath.Join(dir, name), []byte("garbage"), 0o600))
	}
	require.NoError(t, os.Mkdir(filepath.Join(dir, "00000000000000000009.seg"), 0o700))
	r, st := openLog(t, dir, 4<<10, 1<<30)
	assert.Equal(t, map[string]string{"a": "1"}, state(r))
	assert.Equal(t, replayStats{records: 1}, st)
	_, err := os.Stat(filepath.Join(dir, "notes.txt"))
	assert.NoError(t, err)
}

// failingFile returns ENOSPC after writing half of a record while full is set.
type failingFile struct {
	*os.File
	full *bool
}

func (f failingFile) WriteAt(b []byte, off int64) (int, error) {
	if *f.full {
		n, _ := f.File.WriteAt(b[:len(b)/2], off)
		return n, &os.PathError{Op: "write", Path: f.Name(), Err: syscall.ENOSPC}
	}
	return f.File.WriteAt(b, off)
}

// TestDiskFullLeavesTheLogConsistent: ENOSPC mid-write returns an error
// wrapping storage.ErrStorageFull, applies nothing, cuts the partial record
// off, and the next write after space comes back succeeds.
func TestDiskFullLeavesTheLogConsistent(t *testing.T) {
	dir := t.TempDir()
	full := false
	fsys := osFileSystem
	fsys.openFile = func(name string, flag int, perm os.FileMode) (segmentFile, error) {
		f, err := os.OpenFile(name, flag, perm)
		if err != nil {
			return nil, err
		}
		return failingFile{File: f, full: &full}, nil
	}
	l, _, err := openSegmentLog(dir, 1<<20, 1<<30, fsys)
	require.NoError(t, err)
	defer l.closeFiles()
	require.NoError(t, l.batch([]*storage.Operation{set("a", "1")}))
	size := l.activeSeg().size

	full = true
	err = l.batch([]*storage.Operation{set("b", "2"), del("a")})
	require.ErrorIs(t, err, storage.ErrStorageFull)
	require.ErrorIs(t, err, syscall.ENOSPC)
	assert.Equal(t, map[string]string{"a": "1"}, state(l))
	fi, err := os.Stat(lastSegmentPath(t, dir))
	require.NoError(t, err)
	assert.Equal(t, size, fi.Size(), "the partial record is truncated")

	full = false
	require.NoError(t, l.batch([]*storage.Operation{set("c", "3")}))
	r, st := openLog(t, copyDir(t, dir), 1<<20, 1<<30)
	assert.Equal(t, map[string]string{"a": "1", "c": "3"}, state(r))
	assert.Equal(t, replayStats{records: 2}, st)
}

// TestTombstoneNeverOutlivesTheSetItHides: a segment holding nothing live
// but the Delete of a key whose Set sits in an older, still live segment
// must stay until that older segment goes; deleting it would bring the key
// back on the next replay.
func TestTombstoneNeverOutlivesTheSetItHides(t *testing.T) {
	dir := t.TempDir()
	l, _ := openLog(t, dir, 4<<10, 1<<30)
	model := map[string]string{}
	write := func(ops ...*storage.Operation) {
		require.NoError(t, l.batch(ops))
		applyModel(model, ops...)
	}
	big := string(make([]byte, 1360))
	write(set("keep1", big), set("keep2", big), set("keep3", big), set("victim", "v"))
	write(del("victim")) // rotates: the tombstone opens segment 2
	require.Equal(t, 2, len(l.segs))
	for range 40 { // about four segments of rewrites of one key
		write(set("m", string(make([]byte, 300))))
	}
	r, _ := openLog(t, copyDir(t, dir), 4<<10, 1<<30)
	_, back := state(r)["victim"]
	require.False(t, back, "the deleted key came back on replay")
	require.True(t, maps.Equal(model, state(r)), "replay differs from the model")
	require.Equal(t, uint64(1), l.segs[0].id, "segment 1 is live")
	require.Equal(t, uint64(2), l.segs[1].id, "segment 2 holds the tombstone of a Set in segment 1")
}

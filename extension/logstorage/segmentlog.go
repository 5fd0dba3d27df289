package logstorage // import "github.com/anvil/anvilcol/extension/logstorage"

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"

	"go.opentelemetry.io/collector/extension/xextension/storage"
)

const (
	segmentSuffix  = ".seg"
	segmentNameLen = 20 + len(segmentSuffix)
	lockFileName   = "LOCK"
	// rewriteSlack: a write that adds no key and grows the data held by at
	// most this much (the queue's metadata growing by one dispatched index)
	// is never refused for max_size, so a full queue can still be read and
	// acknowledged.
	rewriteSlack = 4 << 10
)

// errMaxSize is wrapped in the error of a write refused for max_size.
var errMaxSize = errors.New("max_size would be exceeded")

// segmentFile is what the log needs of an open segment file; tests inject
// failing ones.
type segmentFile interface {
	io.WriterAt
	Truncate(size int64) error
	Sync() error
	Close() error
}

// fileSystem is the log's access to the disk; tests inject faults.
type fileSystem struct {
	openFile func(name string, flag int, perm os.FileMode) (segmentFile, error)
	remove   func(name string) error
}

var osFileSystem = fileSystem{
	openFile: func(name string, flag int, perm os.FileMode) (segmentFile, error) {
		return os.OpenFile(name, flag, perm)
	},
	remove: os.Remove,
}

// segment is one segment file's bookkeeping.
type segment struct {
	id        uint64
	size      int64 // bytes in the file
	live      int   // keys whose current value is in this segment
	liveBytes int64 // payload bytes those keys' ops take
}

// entry is a key's current value and the segment holding it.
type entry struct {
	value []byte
	seg   *segment
}

// replayStats counts what opening a log found.
type replayStats struct {
	records   int64
	corrupt   int64
	tornTails int64
}

// segmentLog is one client's state: the segment files of its directory and
// the map they replay to. Not safe for concurrent use (the client locks).
type segmentLog struct {
	dir         string
	segmentSize int64
	maxSize     int64
	fs          fileSystem

	segs   []*segment // oldest first; the last one is active
	active segmentFile
	kv     map[string]entry
	disk   int64 // sum of segs' sizes

	buf         []byte      // encode buffer, reused
	dec         []decodedOp // decode buffer, reused
	compactions int64
	copiedBytes int64 // by compactions
	written     int64 // bytes of records written (compactions included)
	removeFails int64
}

func segmentPath(dir string, id uint64) string {
	return filepath.Join(dir, fmt.Sprintf("%020d%s", id, segmentSuffix))
}

// listSegments returns the ids of dir's segment files in order; any other
// file is ignored.
func listSegments(dir string) ([]uint64, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var ids []uint64
	for _, e := range entries {
		name := e.Name()
		if !e.Type().IsRegular() || len(name) != segmentNameLen || !strings.HasSuffix(name, segmentSuffix) {
			continue
		}
		id, err := strconv.ParseUint(strings.TrimSuffix(name, segmentSuffix), 10, 64)
		if err != nil || id == 0 {
			continue
		}
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids, nil
}

// openSegmentLog replays dir's segments into memory and opens the last one
// for appending (a new first one if there is none).
func openSegmentLog(dir string, segmentSize, maxSize int64, fsys fileSystem) (*segmentLog, replayStats, error) {
	l := &segmentLog{dir: dir, segmentSize: segmentSize, maxSize: maxSize, fs: fsys, kv: map[string]entry{}}
	var st replayStats
	ids, err := listSegments(dir)
	if err != nil {
		return nil, st, err
	}
	for i, id := range ids {
		data, err := os.ReadFile(segmentPath(dir, id))
		if err != nil {
			return nil, st, err
		}
		seg := &segment{id: id, size: int64(len(data))}
		r := scanSegment(data, func(payload []byte) error { return l.applyPayload(payload, seg) })
		st.records += r.records
		st.corrupt += r.corrupt
		if r.tail {
			if i == len(ids)-1 {
				// kill -9 in the middle of the last write: cut it off, so
				// that appending resumes right after the last whole record.
				st.tornTails++
				seg.size = int64(r.validEnd)
			} else {
				st.corrupt++
			}
		}
		l.segs = append(l.segs, seg)
		l.disk += seg.size
	}
	if len(l.segs) == 0 {
		l.segs = append(l.segs, &segment{id: 1})
	}
	last := l.segs[len(l.segs)-1]
	f, err := fsys.openFile(segmentPath(dir, last.id), os.O_CREATE|os.O_WRONLY, 0o600)
	if err != nil {
		return nil, st, err
	}
	// Appending uses WriteAt(size), so even if this truncate fails the next
	// record overwrites the torn bytes.
	_ = f.Truncate(last.size)
	l.active = f
	l.dropDeadPrefix()
	return l, st, nil
}

// applyPayload applies one record's ops, all or none.
func (l *segmentLog) applyPayload(payload []byte, seg *segment) error {
	ops, err := decodePayload(payload, l.dec)
	l.dec = ops
	if err != nil {
		return err
	}
	for _, op := range ops {
		if op.typ == opSet {
			l.put(string(op.key), slices.Clone(op.value), seg)
		} else {
			l.del(string(op.key))
		}
	}
	return nil
}

func (l *segmentLog) put(key string, value []byte, seg *segment) {
	if value == nil {
		value = []byte{}
	}
	if old, ok := l.kv[key]; ok {
		old.seg.live--
		old.seg.liveBytes -= opSize(key, old.value, true)
	}
	l.kv[key] = entry{value: value, seg: seg}
	seg.live++
	seg.liveBytes += opSize(key, value, true)
}

func (l *segmentLog) del(key string) {
	if old, ok := l.kv[key]; ok {
		old.seg.live--
		old.seg.liveBytes -= opSize(key, old.value, true)
		delete(l.kv, key)
	}
}

func (l *segmentLog) activeSeg() *segment { return l.segs[len(l.segs)-1] }

// get returns a copy of key's value, nil if absent.
func (l *segmentLog) get(key string) []byte {
	e, ok := l.kv[key]
	if !ok {
		return nil
	}
	return slices.Clone(e.value)
}

// batch writes the Set and Delete ops of ops as one record, then applies
// ops in order (Get ops read the state at their point of the batch). On
// error nothing is applied and nothing stays on disk.
func (l *segmentLog) batch(ops []*storage.Operation) error {
	writes := false
	for _, op := range ops {
		switch op.Type {
		case storage.Get:
		case storage.Set, storage.Delete:
			writes = true
		default:
			return errWrongOpType
		}
	}
	if writes {
		rec, err := appendRecord(l.buf[:0], ops)
		l.buf = rec
		if err != nil {
			return err
		}
		if err := l.admit(ops, int64(len(rec))); err != nil {
			return err
		}
		if err := l.append(rec); err != nil {
			return err
		}
	}
	seg := l.activeSeg()
	for _, op := range ops {
		switch op.Type {
		case storage.Get:
			op.Value = l.get(op.Key)
		case storage.Set:
			l.put(op.Key, slices.Clone(op.Value), seg)
		case storage.Delete:
			l.del(op.Key)
		}
	}
	if len(l.buf) > 1<<20 {
		l.buf = nil // do not keep a large batch's buffer
	}
	l.dropDeadPrefix()
	return nil
}

// admit refuses a write that adds data and would take the log over maxSize,
// after trying to give back dead space by an early rotation.
func (l *segmentLog) admit(ops []*storage.Operation, n int64) error {
	if l.disk+n <= l.maxSize || !l.grows(ops) {
		return nil
	}
	if l.activeSeg().size > 0 {
		// plan as if the active segment were sealed by the rotation
		k, live := planCompaction(append(slices.Clip(l.segs), &segment{}), l.segmentSize)
		var freed int64
		for _, s := range l.segs[:k] {
			freed += s.size
		}
		if freed-live-headerSize >= n {
			if err := l.rotate(); err != nil {
				return err
			}
			if l.disk+n <= l.maxSize {
				return nil
			}
		}
	}
	return fmt.Errorf("%w: %w: a %d-byte record with %d bytes on disk in %s (max_size %d)",
		storage.ErrStorageFull, errMaxSize, n, l.disk, l.dir, l.maxSize)
}

// grows reports whether ops add a key or grow the data held by more than
// rewriteSlack.
func (l *segmentLog) grows(ops []*storage.Operation) bool {
	var growth int64
	for _, op := range ops {
		old, ok := l.kv[op.Key]
		switch op.Type {
		case storage.Set:
			if !ok {
				return true
			}
			growth += opSize(op.Key, op.Value, true) - opSize(op.Key, old.value, true)
		case storage.Delete:
			if ok {
				growth -= opSize(op.Key, old.value, true)
			}
		}
	}
	return growth > rewriteSlack
}

// append writes rec with one write() at the end of the active segment,
// rotating first if rec does not fit. A failed write is cut back off.
func (l *segmentLog) append(rec []byte) error {
	seg := l.activeSeg()
	if seg.size > 0 && seg.size+int64(len(rec)) > l.segmentSize {
		if err := l.rotate(); err != nil {
			return err
		}
		seg = l.activeSeg()
	}
	if _, err := l.active.WriteAt(rec, seg.size); err != nil {
		_ = l.active.Truncate(seg.size)
		return writeError(err)
	}
	seg.size += int64(len(rec))
	l.disk += int64(len(rec))
	l.written += int64(len(rec))
	return nil
}

func writeError(err error) error {
	if errors.Is(err, syscall.ENOSPC) {
		return fmt.Errorf("%w: %w", storage.ErrStorageFull, err)
	}
	return err
}

// rotate starts a new segment, then copies the live keys of the oldest
// segments into it if that frees at least as much as it copies.
func (l *segmentLog) rotate() error {
	next := &segment{id: l.activeSeg().id + 1}
	f, err := l.fs.openFile(segmentPath(l.dir, next.id), os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return writeError(err)
	}
	_ = l.active.Close()
	l.active = f
	l.segs = append(l.segs, next)
	l.compact()
	l.dropDeadPrefix()
	return nil
}

// planCompaction picks the oldest sealed segments (all but the last of
// segs) to rewrite: the longest prefix whose live bytes are at most a
// quarter of its size (the copy frees at least three times what it writes,
// and data about to be acknowledged is seldom copied) and at most
// segmentSize (one rotation copies at most one segment). It returns the
// prefix length and its live bytes. After it, every prefix of the sealed
// segments left is more than a quarter live, so they hold less than four
// times their live data.
func planCompaction(segs []*segment, segmentSize int64) (int, int64) {
	var live, size, bestLive int64
	best := 0
	for i, s := range segs[:len(segs)-1] {
		live += s.liveBytes
		size += s.size
		if live > segmentSize {
			break
		}
		if 4*live <= size {
			best, bestLive = i+1, live
		}
	}
	return best, bestLive
}

// compact writes the live keys of the planned prefix into the active
// segment as one record (a snapshot of their current values), after which
// the prefix holds nothing live and is deleted. If the write fails nothing
// changes: the old segments still hold the same values.
func (l *segmentLog) compact() {
	k, live := planCompaction(l.segs, l.segmentSize)
	if k == 0 || live == 0 {
		return
	}
	prefix := map[*segment]bool{}
	for _, s := range l.segs[:k] {
		prefix[s] = true
	}
	var keys []string
	rec := make([]byte, headerSize, headerSize+live)
	copy(rec, magic[:])
	for key, e := range l.kv {
		if prefix[e.seg] {
			keys = append(keys, key)
			rec = append(rec, opSet)
			rec = binaryAppendField(rec, key)
			rec = binaryAppendField(rec, e.value)
		}
	}
	rec, err := sealRecord(rec, 0)
	if err != nil {
		return
	}
	seg := l.activeSeg()
	if _, err := l.active.WriteAt(rec, seg.size); err != nil {
		_ = l.active.Truncate(seg.size)
		return
	}
	seg.size += int64(len(rec))
	l.disk += int64(len(rec))
	l.written += int64(len(rec))
	l.copiedBytes += int64(len(rec))
	for _, key := range keys {
		l.put(key, l.kv[key].value, seg)
	}
	l.compactions++
}

func binaryAppendField[T string | []byte](b []byte, field T) []byte {
	b = binary.AppendUvarint(b, uint64(len(field)))
	return append(b, field...)
}

// dropDeadPrefix deletes the oldest segments while nothing in them is
// live. Oldest first only: a tombstone in a segment can only hide values in
// older segments, which are gone by then.
func (l *segmentLog) dropDeadPrefix() {
	for len(l.segs) > 1 && l.segs[0].live == 0 {
		if err := l.fs.remove(segmentPath(l.dir, l.segs[0].id)); err != nil && !os.IsNotExist(err) {
			l.removeFails++
			return
		}
		l.disk -= l.segs[0].size
		l.segs = l.segs[1:]
	}
}

// close releases the active segment, synced once.
func (l *segmentLog) close() error {
	return errors.Join(l.active.Sync(), l.active.Close())
}

package logstorage // import "github.com/anvil/anvilcol/extension/logstorage"

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
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
	// inlineMax: values of at most this many bytes (the queue's metadata
	// key, small values) are kept in memory; larger ones are read from
	// their segment file when asked for.
	inlineMax = 256
)

// errMaxSize is wrapped in the error of a write refused for max_size.
var errMaxSize = errors.New("max_size would be exceeded")

// segmentFile is what the log needs of an open segment file; tests inject
// failing ones.
type segmentFile interface {
	io.WriterAt
	io.ReaderAt
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
	// f reads (and for the active segment writes) the file: the active
	// segment's handle stays open once it is sealed; a segment replayed
	// at open is opened for reading on its first read. Closed when the
	// segment is deleted and when the log closes.
	f segmentFile
}

// entry is where a key's current value is: the segment holding it, its
// length, and either the value itself (at most inlineMax bytes) or its
// offset in the segment file.
type entry struct {
	seg   *segment
	size  int    // value length
	off   int64  // offset of the value in seg's file, when size > inlineMax
	small string // the value, when size <= inlineMax
	sum   uint32 // CRC32C of the value, when size > inlineMax: checked by get
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
	valueOffs   []int64     // value offsets in buf, reused
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

// openSegmentLog replays dir's segments (keys, small values, offsets of
// large ones) and opens the last one for appending (a new first one if
// there is none).
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
		r := scanSegment(data, func(payload []byte, off int) error { return l.applyPayload(payload, int64(off), seg) })
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
	f, err := fsys.openFile(segmentPath(dir, last.id), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, st, err
	}
	// Appending uses WriteAt(size), so even if this truncate fails the next
	// record overwrites the torn bytes.
	_ = f.Truncate(last.size)
	l.active = f
	last.f = f
	l.dropDeadPrefix()
	return l, st, nil
}

// applyPayload applies one record's ops, all or none; payloadOff is the
// payload's offset in seg's file. Only small values are copied: nothing
// keeps the replay buffer.
func (l *segmentLog) applyPayload(payload []byte, payloadOff int64, seg *segment) error {
	ops, err := decodePayload(payload, l.dec)
	l.dec = ops
	if err != nil {
		return err
	}
	for _, op := range ops {
		if op.typ == opSet {
			l.put(string(op.key), seg, payloadOff+int64(op.valueOff), op.value)
		} else {
			l.del(string(op.key))
		}
	}
	return nil
}

// put makes value, written in seg's file at off, key's current value. Only
// a small value is kept (copied); value may be reused by the caller. A
// large value's CRC32C is kept to check it when it is read back.
func (l *segmentLog) put(key string, seg *segment, off int64, value []byte) {
	var sum uint32
	if len(value) > inlineMax {
		sum = crc32.Checksum(value, castagnoli)
	}
	l.putSum(key, seg, off, value, sum)
}

// putSum is put with the large value's CRC32C given: compaction moves a
// value with the sum it was written with, so damage it copied along is
// still found.
func (l *segmentLog) putSum(key string, seg *segment, off int64, value []byte, sum uint32) {
	if old, ok := l.kv[key]; ok {
		old.seg.live--
		old.seg.liveBytes -= opSize(key, old.size, true)
	}
	e := entry{seg: seg, size: len(value)}
	if len(value) <= inlineMax {
		e.small = string(value)
	} else {
		e.off, e.sum = off, sum
	}
	l.kv[key] = e
	seg.live++
	seg.liveBytes += opSize(key, e.size, true)
}

func (l *segmentLog) del(key string) {
	if old, ok := l.kv[key]; ok {
		old.seg.live--
		old.seg.liveBytes -= opSize(key, old.size, true)
		delete(l.kv, key)
	}
}

func (l *segmentLog) activeSeg() *segment { return l.segs[len(l.segs)-1] }

// get returns a copy of key's value, nil if absent. A large value is
// checked against its CRC32C (errValueCorrupt) when verify is set.
func (l *segmentLog) get(key string, verify bool) ([]byte, error) {
	e, ok := l.kv[key]
	if !ok {
		return nil, nil
	}
	return l.read(key, e, make([]byte, e.size), verify)
}

// errValueCorrupt: a large value read back does not match the CRC32C it
// was written with (the segment file was damaged after the write).
var errValueCorrupt = errors.New("value does not match its CRC32C: the segment file was damaged after it was written")

// read fills buf (len(buf) == e.size) with e's value: a small one from
// memory, a large one with one ReadAt of its segment file, checked against
// its CRC32C when verify is set.
func (l *segmentLog) read(key string, e entry, buf []byte, verify bool) ([]byte, error) {
	if e.size <= inlineMax {
		copy(buf, e.small)
		return buf, nil
	}
	f, err := l.segFile(e.seg)
	if err != nil {
		return nil, err
	}
	n, err := f.ReadAt(buf, e.off)
	if n != len(buf) {
		if err == nil {
			err = io.ErrUnexpectedEOF
		}
		return nil, fmt.Errorf("log_storage: read the %d-byte value of key %q at offset %d of %s: %w",
			e.size, key, e.off, segmentPath(l.dir, e.seg.id), err)
	}
	if verify && crc32.Checksum(buf, castagnoli) != e.sum {
		return nil, fmt.Errorf("log_storage: the %d-byte value of key %q at offset %d of %s: %w",
			e.size, key, e.off, segmentPath(l.dir, e.seg.id), errValueCorrupt)
	}
	return buf, nil
}

// segFile returns seg's open file, opening a segment replayed at open for
// reading on first use.
func (l *segmentLog) segFile(seg *segment) (segmentFile, error) {
	if seg.f == nil {
		f, err := l.fs.openFile(segmentPath(l.dir, seg.id), os.O_RDONLY, 0)
		if err != nil {
			return nil, fmt.Errorf("log_storage: open segment for reading: %w", err)
		}
		seg.f = f
	}
	return seg.f, nil
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
	// Get ops read first: a failed read fails the batch before anything
	// is written.
	gets, err := l.readGets(ops)
	if err != nil {
		return err
	}
	if writes {
		rec, offs, err := appendRecord(l.buf[:0], ops, l.valueOffs)
		l.buf, l.valueOffs = rec, offs
		if err != nil {
			return err
		}
		if err := l.admit(ops, int64(len(rec))); err != nil {
			return err
		}
		recOff, err := l.append(rec)
		if err != nil {
			return err
		}
		seg := l.activeSeg()
		for i, op := range ops {
			switch op.Type {
			case storage.Set:
				l.put(op.Key, seg, recOff+offs[i], op.Value)
			case storage.Delete:
				l.del(op.Key)
			}
		}
	}
	for i, op := range ops {
		if op.Type == storage.Get {
			op.Value = gets[i]
		}
	}
	if len(l.buf) > 1<<20 {
		l.buf = nil // do not keep a large batch's buffer
	}
	l.dropDeadPrefix()
	return nil
}

// readGets returns, for each Get op of ops, a copy of the value at its point
// of the batch: that of the batch's last earlier Set or Delete of its key,
// else the stored one.
func (l *segmentLog) readGets(ops []*storage.Operation) ([][]byte, error) {
	var gets [][]byte
	var last map[string]int // key -> index of its last Set or Delete so far, for long batches
	if len(ops) > 16 {
		last = map[string]int{}
	}
	for i, op := range ops {
		if op.Type != storage.Get {
			if last != nil {
				last[op.Key] = i
			}
			continue
		}
		if gets == nil {
			gets = make([][]byte, len(ops))
		}
		j := -1
		if last != nil {
			if k, ok := last[op.Key]; ok {
				j = k
			}
		} else {
			for k := i - 1; k >= 0; k-- {
				if ops[k].Type != storage.Get && ops[k].Key == op.Key {
					j = k
					break
				}
			}
		}
		switch {
		case j >= 0 && ops[j].Type == storage.Set:
			gets[i] = append(make([]byte, 0, len(ops[j].Value)), ops[j].Value...)
		case j >= 0: // deleted
		default:
			v, err := l.get(op.Key, true)
			if err != nil {
				return nil, err
			}
			gets[i] = v
		}
	}
	return gets, nil
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
			growth += opSize(op.Key, len(op.Value), true) - opSize(op.Key, old.size, true)
		case storage.Delete:
			if ok {
				growth -= opSize(op.Key, old.size, true)
			}
		}
	}
	return growth > rewriteSlack
}

// append writes rec with one write() at the end of the active segment,
// rotating first if rec does not fit, and returns the offset it was written
// at. A failed write is cut back off.
func (l *segmentLog) append(rec []byte) (int64, error) {
	seg := l.activeSeg()
	if seg.size > 0 && seg.size+int64(len(rec)) > l.segmentSize {
		if err := l.rotate(); err != nil {
			return 0, err
		}
		seg = l.activeSeg()
	}
	off := seg.size
	if _, err := l.active.WriteAt(rec, off); err != nil {
		_ = l.active.Truncate(off)
		return 0, writeError(err)
	}
	seg.size += int64(len(rec))
	l.disk += int64(len(rec))
	l.written += int64(len(rec))
	return off, nil
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
	f, err := l.fs.openFile(segmentPath(l.dir, next.id), os.O_CREATE|os.O_EXCL|os.O_RDWR, 0o600)
	if err != nil {
		return writeError(err)
	}
	// the sealed segment keeps its handle (next.f) for reads
	next.f = f
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
	type moved struct {
		key      string
		valueOff int // in rec
		size     int
		sum      uint32
	}
	var keys []moved
	rec := make([]byte, headerSize, headerSize+live)
	copy(rec, magic[:])
	for key, e := range l.kv {
		if prefix[e.seg] {
			rec = append(rec, opSet)
			rec = binaryAppendField(rec, key)
			rec = binary.AppendUvarint(rec, uint64(e.size))
			keys = append(keys, moved{key: key, valueOff: len(rec), size: e.size, sum: e.sum})
			rec = slices.Grow(rec, e.size)[:len(rec)+e.size]
			// Moved as stored, not checked: a damaged value keeps its
			// sum, so a later get still reports it.
			if _, err := l.read(key, e, rec[len(rec)-e.size:], false); err != nil {
				return // a value that cannot be read stays where it is
			}
		}
	}
	rec, err := sealRecord(rec, 0)
	if err != nil {
		return
	}
	seg := l.activeSeg()
	recOff := seg.size
	if _, err := l.active.WriteAt(rec, recOff); err != nil {
		_ = l.active.Truncate(recOff)
		return
	}
	seg.size += int64(len(rec))
	l.disk += int64(len(rec))
	l.written += int64(len(rec))
	l.copiedBytes += int64(len(rec))
	for _, m := range keys {
		l.putSum(m.key, seg, recOff+int64(m.valueOff), rec[m.valueOff:m.valueOff+m.size], m.sum)
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
		if f := l.segs[0].f; f != nil {
			// nothing live is read from it any more (closed before the
			// unlink, which some systems refuse for an open file)
			_ = f.Close()
			l.segs[0].f = nil
		}
		if err := l.fs.remove(segmentPath(l.dir, l.segs[0].id)); err != nil && !os.IsNotExist(err) {
			l.removeFails++
			return
		}
		l.disk -= l.segs[0].size
		l.segs = l.segs[1:]
	}
}

// close syncs the active segment once and closes every segment file.
func (l *segmentLog) close() error {
	return errors.Join(l.active.Sync(), l.closeFiles())
}

// closeFiles closes every open segment file, the active one included.
func (l *segmentLog) closeFiles() error {
	var errs []error
	for _, s := range l.segs {
		if s.f != nil {
			errs = append(errs, s.f.Close())
			s.f = nil
		}
	}
	return errors.Join(errs...)
}

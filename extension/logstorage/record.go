package logstorage // import "github.com/anvil/anvilcol/extension/logstorage"

import (
	"bytes"
	"encoding/binary"
	"errors"
	"hash/crc32"

	"go.opentelemetry.io/collector/extension/xextension/storage"
)

// On-disk record (README.md, "On-disk format"): a 16-byte header, then the
// payload.
//
//	offset 0  magic       4 bytes  4C 53 E7 01 ("LS", 0xE7, format version 1)
//	offset 4  length      uint32 little-endian: payload bytes
//	offset 8  payload crc uint32 little-endian: CRC32C (Castagnoli) of the payload
//	offset 12 header crc  uint32 little-endian: CRC32C of bytes 0-11
//	offset 16 payload     length bytes: one or more ops, each
//	          type byte (1 = set, 2 = delete), uvarint key length, key,
//	          and for a set: uvarint value length, value
//
// The header CRC lets a resync reject a false candidate (a magic inside
// damaged data, with a random length) without reading length bytes: without
// it, a damaged segment full of magics with large lengths costs quadratic
// time to scan (the fuzz test found this).
const (
	headerSize = 16
	opSet      = 1
	opDelete   = 2
	// maxPayload bounds a record's length field, so that a corrupt length
	// is rejected before anything is read; larger batches are refused.
	maxPayload = 1 << 30
)

var (
	magic      = [4]byte{0x4C, 0x53, 0xE7, 0x01}
	castagnoli = crc32.MakeTable(crc32.Castagnoli)

	errBadPayload   = errors.New("record payload does not decode")
	errWrongOpType  = errors.New("wrong operation type")
	errBatchTooBig  = errors.New("batch larger than 1 GiB")
	errEmptyPayload = errors.New("record has no ops")
)

// opSize is the bytes one op takes in a payload (valueLen: the length of a
// set op's value).
func opSize(key string, valueLen int, set bool) int64 {
	n := 1 + uvarintLen(uint64(len(key))) + len(key)
	if set {
		n += uvarintLen(uint64(valueLen)) + valueLen
	}
	return int64(n)
}

func uvarintLen(x uint64) int {
	n := 1
	for x >= 0x80 {
		x >>= 7
		n++
	}
	return n
}

// appendRecord appends one framed record holding the Set and Delete ops of
// ops (Get ops are not written) to buf. valueOffs (reused) gets, for each op
// of ops, the offset of its value from the start of the record (Set ops;
// 0 for the others).
func appendRecord(buf []byte, ops []*storage.Operation, valueOffs []int64) ([]byte, []int64, error) {
	start := len(buf)
	valueOffs = valueOffs[:0]
	buf = append(buf, magic[:]...)
	buf = append(buf, make([]byte, headerSize-len(magic))...)
	for _, op := range ops {
		var valueOff int64
		switch op.Type {
		case storage.Get:
		case storage.Set:
			buf = append(buf, opSet)
			buf = binary.AppendUvarint(buf, uint64(len(op.Key)))
			buf = append(buf, op.Key...)
			buf = binary.AppendUvarint(buf, uint64(len(op.Value)))
			valueOff = int64(len(buf) - start)
			buf = append(buf, op.Value...)
		case storage.Delete:
			buf = append(buf, opDelete)
			buf = binary.AppendUvarint(buf, uint64(len(op.Key)))
			buf = append(buf, op.Key...)
		default:
			return buf[:start], valueOffs, errWrongOpType
		}
		valueOffs = append(valueOffs, valueOff)
	}
	buf, err := sealRecord(buf, start)
	return buf, valueOffs, err
}

// sealRecord fills in the length and CRC of the record starting at start.
func sealRecord(buf []byte, start int) ([]byte, error) {
	payload := buf[start+headerSize:]
	if len(payload) > maxPayload {
		return buf[:start], errBatchTooBig
	}
	binary.LittleEndian.PutUint32(buf[start+4:], uint32(len(payload)))
	binary.LittleEndian.PutUint32(buf[start+8:], crc32.Checksum(payload, castagnoli))
	binary.LittleEndian.PutUint32(buf[start+12:], crc32.Checksum(buf[start:start+12], castagnoli))
	return buf, nil
}

// recordAt returns the payload of the record at data[off:] and the record's
// total length, or ok=false if no valid record starts there.
func recordAt(data []byte, off int) (payload []byte, n int, ok bool) {
	if len(data)-off < headerSize || !bytes.Equal(data[off:off+4], magic[:]) ||
		crc32.Checksum(data[off:off+12], castagnoli) != binary.LittleEndian.Uint32(data[off+12:]) {
		return nil, 0, false
	}
	length := binary.LittleEndian.Uint32(data[off+4:])
	if length > maxPayload || uint64(length) > uint64(len(data)-off-headerSize) {
		return nil, 0, false
	}
	payload = data[off+headerSize : off+headerSize+int(length)]
	if crc32.Checksum(payload, castagnoli) != binary.LittleEndian.Uint32(data[off+8:]) {
		return nil, 0, false
	}
	return payload, headerSize + int(length), true
}

// nextRecord finds the first offset >= from where a valid record starts, or
// -1. This is the resync after a corrupt region: a candidate must carry the
// magic, a header CRC that matches, a length that fits and a payload CRC
// that matches.
func nextRecord(data []byte, from int) int {
	for from < len(data) {
		i := bytes.Index(data[from:], magic[:])
		if i < 0 {
			return -1
		}
		if _, _, ok := recordAt(data, from+i); ok {
			return from + i
		}
		from += i + 1
	}
	return -1
}

// decodedOp is one op of a payload; key and value alias the payload.
type decodedOp struct {
	typ      byte
	key      []byte
	value    []byte
	valueOff int // offset of value in the payload (set ops)
}

// decodePayload decodes every op of payload into ops (reused), or fails
// without a partial result, so that a record is applied whole or not at all.
func decodePayload(payload []byte, ops []decodedOp) ([]decodedOp, error) {
	ops = ops[:0]
	if len(payload) == 0 {
		return ops, errEmptyPayload
	}
	total := len(payload)
	for len(payload) > 0 {
		typ := payload[0]
		if typ != opSet && typ != opDelete {
			return ops[:0], errBadPayload
		}
		payload = payload[1:]
		key, rest, ok := lengthPrefixed(payload)
		if !ok {
			return ops[:0], errBadPayload
		}
		payload = rest
		var value []byte
		valueOff := 0
		if typ == opSet {
			if value, payload, ok = lengthPrefixed(payload); !ok {
				return ops[:0], errBadPayload
			}
			valueOff = total - len(payload) - len(value)
		}
		ops = append(ops, decodedOp{typ: typ, key: key, value: value, valueOff: valueOff})
	}
	return ops, nil
}

func lengthPrefixed(b []byte) (field, rest []byte, ok bool) {
	l, n := binary.Uvarint(b)
	if n <= 0 || l > uint64(len(b)-n) {
		return nil, nil, false
	}
	return b[n : n+int(l)], b[n+int(l):], true
}

// scanResult is what scanning one segment found.
type scanResult struct {
	records  int64 // valid records applied
	corrupt  int64 // corrupt regions (or undecodable records) skipped before validEnd
	validEnd int   // offset just past the last valid record
	tail     bool  // bytes after validEnd are not a valid record
}

// scanSegment applies every valid record of data in order (apply gets the
// payload and its offset in data). A damaged region is skipped by resyncing
// on the next valid record; damage after the last valid record is reported
// as tail, for the caller to truncate (last segment: a torn write) or count
// (any other segment).
func scanSegment(data []byte, apply func(payload []byte, off int) error) scanResult {
	var r scanResult
	off := 0
	for off < len(data) {
		payload, n, ok := recordAt(data, off)
		if !ok {
			next := nextRecord(data, off+1)
			if next < 0 {
				r.tail = true
				return r
			}
			r.corrupt++
			off = next
			continue
		}
		payloadOff := off + headerSize
		off += n
		r.validEnd = off
		if err := apply(payload, payloadOff); err != nil {
			r.corrupt++
			continue
		}
		r.records++
	}
	return r
}

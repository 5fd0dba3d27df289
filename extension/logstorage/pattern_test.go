package logstorage

import (
	"fmt"
	"strconv"

	"go.opentelemetry.io/collector/extension/xextension/storage"
)

// queuePattern produces the storage calls of the collector's persistent
// queue (exporterhelper v0.155.0, internal/queue/persistent_queue.go):
// every call rewrites the metadata key "qmv0"; an offer sets item w, a read
// gets item r, an acknowledgement deletes it. Items are written FIFO and
// acknowledged FIFO, depth of them outstanding.
type queuePattern struct {
	depth    uint64
	itemSize int
	w, r     uint64
	phase    int
	value    []byte
}

func newQueuePattern(depth uint64) *queuePattern {
	return &queuePattern{depth: depth, itemSize: 300}
}

func (q *queuePattern) meta() []byte {
	return fmt.Appendf(nil, "w=%d r=%d inflight=%d", q.w, q.r, q.w-q.r)
}

func itemKey(i uint64) string { return strconv.FormatUint(i, 10) }

func (q *queuePattern) item(i uint64) []byte {
	if len(q.value) != q.itemSize {
		q.value = make([]byte, q.itemSize)
	}
	v := append([]byte(nil), q.value...)
	copy(v, fmt.Sprintf("item %d", i))
	return v
}

// next returns the next call's ops: offers until depth items are queued,
// then offer, read+ack in turn.
func (q *queuePattern) next() []*storage.Operation {
	if q.w-q.r < q.depth || q.phase == 0 {
		q.phase = 1
		q.w++
		return []*storage.Operation{storage.SetOperation("qmv0", q.meta()), storage.SetOperation(itemKey(q.w-1), q.item(q.w-1))}
	}
	if q.phase == 1 {
		q.phase = 2
		return []*storage.Operation{storage.SetOperation("qmv0", q.meta()), storage.GetOperation(itemKey(q.r))}
	}
	q.phase = 0
	q.r++
	return []*storage.Operation{storage.SetOperation("qmv0", q.meta()), storage.DeleteOperation(itemKey(q.r - 1))}
}

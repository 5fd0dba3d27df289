package cardinalityguardprocessor // import "github.com/anvil/anvilcol/processor/cardinalityguardprocessor"

import "math/bits"

// numTable holds the input-series state of a cumulative number stream: an
// open-addressing (linear probing) table of 24-byte slots keyed by the input's
// attribute hash. It exists for memory: a Go map spends ~56 B per entry here,
// this ~30-45 B (load 0.53-0.8, growth x1.5), so a million inputs fit in the
// budget.
type numTable struct {
	slots []numSlot
	n     int
}

type numSlot struct {
	key uint64 // 0: empty
	numInput
}

const (
	numTableMinSize = 16
	numTableMaxLoad = 0.8
)

func tableKey(h uint64) uint64 {
	if h == 0 {
		return 1
	}
	return h
}

// home is the first slot to probe for k, spread over any table size.
func (t *numTable) home(k uint64) int {
	hi, _ := bits.Mul64(k, uint64(len(t.slots)))
	return int(hi)
}

func (t *numTable) Len() int { return t.n }

// upsert returns the state of input h, inserting a zero state if it is new.
// The pointer is valid until the next upsert.
func (t *numTable) upsert(h uint64) (*numInput, bool) {
	if float64(t.n+1) > float64(len(t.slots))*numTableMaxLoad {
		t.resize(max(numTableMinSize, len(t.slots)*3/2), 0)
	}
	k := tableKey(h)
	for i := t.home(k); ; {
		s := &t.slots[i]
		switch s.key {
		case k:
			return &s.numInput, true
		case 0:
			s.key = k
			s.numInput = numInput{}
			t.n++
			return &s.numInput, false
		}
		if i++; i == len(t.slots) {
			i = 0
		}
	}
}

// evict drops the inputs seen before cutoff (rebuilding the table, sized for
// what is left, when anything was dropped).
func (t *numTable) evict(cutoff uint32) {
	live := 0
	for i := range t.slots {
		if s := &t.slots[i]; s.key != 0 && s.seen&^overflowBit >= cutoff {
			live++
		}
	}
	if live == t.n {
		return
	}
	size := numTableMinSize
	for float64(live) > float64(size)*numTableMaxLoad*0.75 {
		size = size * 3 / 2
	}
	t.resize(size, cutoff)
}

func (t *numTable) resize(size int, cutoff uint32) {
	old := t.slots
	t.slots = make([]numSlot, size)
	t.n = 0
	for i := range old {
		s := &old[i]
		if s.key == 0 || s.seen&^overflowBit < cutoff {
			continue
		}
		for j := t.home(s.key); ; {
			if t.slots[j].key == 0 {
				t.slots[j] = *s
				t.n++
				break
			}
			if j++; j == len(t.slots) {
				j = 0
			}
		}
	}
}

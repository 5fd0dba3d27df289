package cardinalityguardprocessor

import (
	"strconv"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pcommon"
)

func TestAttributeHashIgnoresOrderButNotContent(t *testing.T) {
	r := newRules(false, []string{"labeler_id"}, 0)
	a, b, c, d := pcommon.NewMap(), pcommon.NewMap(), pcommon.NewMap(), pcommon.NewMap()
	a.PutStr("queue_id", "q1")
	a.PutStr("labeler_id", "x")
	a.PutInt("n", 1)
	b.PutInt("n", 1)
	b.PutStr("labeler_id", "y")
	b.PutStr("queue_id", "q1")
	c.PutStr("queue_id", "n")
	c.PutStr("n", "q1") // keys and values swapped
	d.PutStr("queue_id", "q1")
	d.PutStr("n", "1") // same text, other type

	fa, ra, na := r.hash(a)
	fb, rb, nb := r.hash(b)
	assert.Equal(t, ra, rb, "same surviving attributes in another order: one output series")
	assert.NotEqual(t, fa, fb, "different labeler_id: different input series")
	assert.Equal(t, 1, na)
	assert.Equal(t, 1, nb)
	_, rc, _ := r.hash(c)
	_, rd, _ := r.hash(d)
	assert.NotEqual(t, ra, rc)
	assert.NotEqual(t, ra, rd)
	assert.Equal(t, 3, a.Len(), "hash does not modify")
	r.strip(a)
	assert.Equal(t, 2, a.Len())
}

func TestStringHashCoversEveryLength(t *testing.T) {
	seen := map[uint64]string{}
	s := ""
	for n := 0; n < 70; n++ {
		for _, v := range []string{s + "a", s + "b"} {
			h := hashString(v)
			prev, dup := seen[h]
			require.False(t, dup, "%q and %q collide", v, prev)
			seen[h] = v
		}
		s += "x"
	}
}

func TestNumTableGrowsAndEvicts(t *testing.T) {
	var tab numTable
	const n = 10_000
	for i := 0; i < n; i++ {
		in, known := tab.upsert(mix(uint64(i) + 1))
		require.False(t, known)
		in.last = float64(i)
		in.seen = uint32(i%2 + 1) // odd i: seen at tick 2
	}
	assert.Equal(t, n, tab.Len())
	assert.LessOrEqual(t, float64(n), float64(len(tab.slots))*numTableMaxLoad)
	tab.evict(2) // drops everything seen at tick 1 (even i)
	assert.Equal(t, n/2, tab.Len())
	for i := 0; i < n; i++ {
		in, known := tab.upsert(mix(uint64(i) + 1))
		if i%2 == 1 {
			require.True(t, known, strconv.Itoa(i))
			require.Equal(t, float64(i), in.last)
		} else {
			require.False(t, known, strconv.Itoa(i))
		}
	}
	assert.Equal(t, n, tab.Len())
	_, known := tab.upsert(0) // the zero hash is a valid key too
	assert.False(t, known)
	_, known = tab.upsert(0)
	assert.True(t, known)
}

package cardinalityguardprocessor

import (
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pcommon"

	"github.com/anvil/anvilcol/internal/metricstate"
)

func TestAttributeHashIgnoresOrderButNotContent(t *testing.T) {
	st := &stream{rules: newRules(false, []string{"labeler_id"}, 0)}
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

	fa, ra, na := st.hash(a, true)
	fb, rb, nb := st.hash(b, true)
	assert.Equal(t, ra, rb, "same surviving attributes in another order: one output series")
	assert.NotEqual(t, fa, fb, "different labeler_id: different input series")
	assert.Equal(t, 1, na)
	assert.Equal(t, 1, nb)
	_, rc, _ := st.hash(c, true)
	_, rd, _ := st.hash(d, true)
	assert.NotEqual(t, ra, rc)
	assert.NotEqual(t, ra, rd)
	assert.Equal(t, 3, a.Len(), "hash does not modify")
	st.rules.strip(a)
	assert.Equal(t, 2, a.Len())
}

func TestNumTableGrowsAndEvicts(t *testing.T) {
	var tab numTable
	const n = 10_000
	for i := 0; i < n; i++ {
		in, known := tab.upsert(metricstate.Mix(uint64(i) + 1))
		require.False(t, known)
		in.last = float64(i)
		in.seen = uint32(i%2 + 1) // odd i: seen at tick 2
	}
	assert.Equal(t, n, tab.Len())
	assert.LessOrEqual(t, float64(n), float64(len(tab.slots))*numTableMaxLoad)
	tab.evict(2) // drops everything seen at tick 1 (even i)
	assert.Equal(t, n/2, tab.Len())
	for i := 0; i < n; i++ {
		in, known := tab.upsert(metricstate.Mix(uint64(i) + 1))
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

// The stream's hash (key layout, dropped values skipped for delta) is the
// shared series identity: metricstate.HashAttributes of the whole attribute
// set and of what survives, whatever the key order, mix of layouts and value
// types.
func TestStreamHashIsTheSeriesIdentity(t *testing.T) {
	for _, allow := range []bool{false, true} {
		r := newRules(allow, []string{"labeler_id", "sample_id"}, 0)
		st := &stream{rules: r}
		keys := []string{"queue_id", "labeler_id", "sample_id", "policy_type", "schema_version_id", "a", "b2345678", "k-0123456789abcdef-long"}
		rng := rand.New(rand.NewPCG(1, 2))
		for i := 0; i < 5000; i++ {
			m := pcommon.NewMap()
			for _, j := range rng.Perm(len(keys))[:rng.IntN(len(keys)+1)] {
				switch rng.IntN(4) {
				case 0:
					m.PutInt(keys[j], int64(rng.IntN(3)))
				case 1:
					m.PutStr(keys[j], "")
				default:
					m.PutStr(keys[j], strings.Repeat("x", rng.IntN(20))+strconv.Itoa(rng.IntN(5)))
				}
			}
			reduced := pcommon.NewMap()
			m.CopyTo(reduced)
			r.strip(reduced)
			wf, wr, wn := metricstate.HashAttributes(m), metricstate.HashAttributes(reduced), m.Len()-reduced.Len()
			f, red, n := st.hash(m, true)
			require.Equal(t, wf, f, "full hash of %v", m.AsRaw())
			require.Equal(t, wr, red, "reduced hash of %v", m.AsRaw())
			require.Equal(t, wn, n)
			f, red, n = st.hash(m, false)
			require.Zero(t, f)
			require.Equal(t, wr, red)
			require.Equal(t, wn, n)
		}
		assert.LessOrEqual(t, len(st.layout), maxLayoutKeys)
	}
}

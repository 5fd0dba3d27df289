package metricstate

import (
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/zeebo/xxh3"
	"go.opentelemetry.io/collector/pdata/pcommon"
)

func attrs(kv ...any) pcommon.Map {
	m := pcommon.NewMap()
	for i := 0; i < len(kv); i += 2 {
		require.NoError(nil, m.PutEmpty(kv[i].(string)).FromRaw(kv[i+1]))
	}
	return m
}

func TestHashAttributesIgnoresOrder(t *testing.T) {
	a := attrs("queue_id", "q1", "policy_type", "fifo", "n", int64(3))
	b := attrs("n", int64(3), "policy_type", "fifo", "queue_id", "q1")
	assert.Equal(t, HashAttributes(a), HashAttributes(b))
}

func TestHashAttributesTellsApartWhatDiffers(t *testing.T) {
	distinct := []pcommon.Map{
		attrs(),
		attrs("a", "b"),
		attrs("b", "a"),          // key and value swapped
		attrs("a", "b", "c", ""), // an extra empty value
		attrs("a", int64(1)),
		attrs("a", "1"), // same text, other type
		attrs("a", 1.0),
		attrs("a", true),
		attrs("a", false),
		attrs("a", []any{"b", "c"}),
		attrs("a", []any{"c", "b"}),
		attrs("a", map[string]any{"b": "c"}),
		attrs("ab", ""),
	}
	seen := map[uint64]int{}
	for i, m := range distinct {
		h := HashAttributes(m)
		if j, ok := seen[h]; ok {
			t.Fatalf("sets %d and %d hash alike: %v / %v", j, i, distinct[j].AsRaw(), m.AsRaw())
		}
		seen[h] = i
	}
}

// Realistic series: every combination of queue, labeler and policy of a large
// deployment, and the same values under swapped keys, hash apart.
func TestHashAttributesNoCollisionsOnRealisticKeys(t *testing.T) {
	n := 400_000
	if testing.Short() {
		n = 40_000
	}
	seen := make(map[uint64]struct{}, n*2)
	m := pcommon.NewMap()
	policies := []string{"round_robin", "least_loaded", "expertise", "random"}
	for i := range n {
		m.Clear()
		m.PutStr("queue_id", fmt.Sprintf("q-%04d", i%997))
		m.PutStr("labeler_id", fmt.Sprintf("labeler-%07d", i))
		m.PutStr("policy_type", policies[i%len(policies)])
		m.PutInt("schema_version_id", int64(i%13))
		for _, h := range []uint64{HashAttributes(m), swapped(m)} {
			if _, dup := seen[h]; dup {
				t.Fatalf("collision at series %d", i)
			}
			seen[h] = struct{}{}
		}
	}
}

// swapped hashes m with the labeler and queue keys exchanged.
func swapped(m pcommon.Map) uint64 {
	o := pcommon.NewMap()
	m.CopyTo(o)
	q, _ := o.Get("queue_id")
	l, _ := o.Get("labeler_id")
	qs, ls := q.Str(), l.Str()
	o.PutStr("queue_id", ls)
	o.PutStr("labeler_id", qs)
	return HashAttributes(o)
}

func TestHashStartKeepsZeroUnknown(t *testing.T) {
	assert.Zero(t, HashStart(0))
	assert.NotZero(t, HashStart(1))
	assert.NotEqual(t, HashStart(1), HashStart(2))
	assert.False(t, Restarted(HashStart(0), HashStart(5)), "unknown start: no reset")
	assert.False(t, Restarted(HashStart(5), HashStart(5)))
	assert.True(t, Restarted(HashStart(5), HashStart(6)))
	assert.True(t, Restarted(pcommon.Timestamp(5), pcommon.Timestamp(6)))
}

func TestHashStringIsXXH3(t *testing.T) {
	r := rand.New(rand.NewPCG(11, 12))
	for n := range 80 {
		for range 20 {
			b := make([]byte, n)
			for i := range b {
				b[i] = byte(r.Uint32())
			}
			require.Equal(t, xxh3.Hash(b), HashString(string(b)), "length %d", n)
		}
	}
}

func BenchmarkHashString(b *testing.B) {
	for _, s := range []string{"queue_id", "labeler-0000042", "anvil.label.submit.duration", strings.Repeat("x", 40)} {
		b.Run(strconv.Itoa(len(s)), func(b *testing.B) {
			for range b.N {
				HashString(s)
			}
		})
	}
}

package metricstate // import "github.com/anvil/anvilcol/internal/metricstate"

import (
	"math"
	"math/bits"

	"github.com/cespare/xxhash/v2"
	"go.opentelemetry.io/collector/pdata/pcommon"
)

// Series identities are 64-bit hashes, so state is keyed by them and never by
// copies of attribute maps. An attribute set hashes as the sum of its pairs'
// hashes, so the same attributes in another order are the same series.

const (
	prime1 = 0x9E3779B97F4A7C15
	prime2 = 0xC2B2AE3D27D4EB4F
)

// Mix is the splitmix64 finaliser.
func Mix(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xBF58476D1CE4E5B9
	x ^= x >> 27
	x *= 0x94D049BB133111EB
	x ^= x >> 31
	return x
}

// HashString is xxhash64 of s.
func HashString(s string) uint64 { return xxhash.Sum64String(s) }

// HashKey is the key half of an attribute's hash; a caller that meets the
// same keys again may keep it and pass it to HashPair.
func HashKey(k string) uint64 { return HashString(k) ^ prime1 }

// HashPair is the hash of one attribute from HashKey(k) and HashValue(v).
// Key and value mix asymmetrically, so {a: "b"} and {b: "a"} differ.
func HashPair(kh, vh uint64) uint64 {
	hi, lo := bits.Mul64(kh, vh^prime2)
	return hi ^ lo
}

// HashValue hashes an attribute value; values of different types differ
// (the int 1 is not the string "1").
func HashValue(v pcommon.Value) uint64 {
	switch v.Type() {
	case pcommon.ValueTypeStr:
		return HashString(v.Str())
	case pcommon.ValueTypeInt:
		return Mix(uint64(v.Int())*prime1 ^ 0x1)
	case pcommon.ValueTypeDouble:
		return Mix(math.Float64bits(v.Double())*prime1 ^ 0x2)
	case pcommon.ValueTypeBool:
		if v.Bool() {
			return Mix(0x3)
		}
		return Mix(0x4)
	case pcommon.ValueTypeBytes:
		return xxhash.Sum64(v.Bytes().AsRaw()) ^ 0x5
	case pcommon.ValueTypeSlice:
		s := v.Slice()
		h := uint64(0x6)
		for i := 0; i < s.Len(); i++ {
			h = Mix(h*prime2 + HashValue(s.At(i)))
		}
		return h
	case pcommon.ValueTypeMap:
		return HashAttributes(v.Map()) ^ 0x7
	}
	return 0
}

// SetHash finishes the hash of an attribute set from the sum of its pairs'
// HashPair values and their number.
func SetHash(sum uint64, n int) uint64 { return Mix(sum + uint64(n)) }

// HashAttributes is the order-independent hash of an attribute set.
func HashAttributes(m pcommon.Map) uint64 {
	var sum uint64
	for k, v := range m.All() {
		sum += HashPair(HashKey(k), HashValue(v))
	}
	return SetHash(sum, m.Len())
}

// HashScope hashes an instrumentation scope (name, version, attributes).
func HashScope(s pcommon.InstrumentationScope) uint64 {
	return Mix(HashString(s.Name())*prime1 + HashString(s.Version())*prime2 + HashAttributes(s.Attributes()))
}

// HashStart folds a start timestamp into 32 bits for state that must stay
// small: only equality matters (a changed start time is a reset). 0 stays 0
// ("unknown"), as Restarted expects.
func HashStart(t pcommon.Timestamp) uint32 {
	if t == 0 {
		return 0
	}
	h := uint32(Mix(uint64(t)))
	if h == 0 {
		h = 1
	}
	return h
}

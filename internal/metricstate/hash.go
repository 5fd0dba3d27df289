package metricstate // import "github.com/anvil/anvilcol/internal/metricstate"

import (
	"math"
	"math/bits"

	"github.com/zeebo/xxh3"
	"go.opentelemetry.io/collector/pdata/pcommon"
)

// Series identities are 64-bit hashes, so state is keyed by them and never by
// copies of attribute maps. An attribute set hashes as the sum of its pairs'
// hashes, so the same attributes in another order are the same series.
//
// Strings hash with XXH3-64 (the xxHash family's short-input hash; seed 0,
// the default secret, github.com/zeebo/xxh3). XXH3 rather than XXH64: on the
// 4-16 byte inputs that make up nearly every attribute value and key (ids
// like "u-13669", "a-xxgceecz") it is ~1.5x cheaper (BenchmarkHashString),
// and that is the guard's per-point cost.

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

// HashString is the XXH3-64 hash of s.
func HashString(s string) uint64 {
	switch n := len(s); {
	case n > 16:
		return xxh3.HashString(s)
	case n > 8:
		return Hash9to16(LoadLE64(s, 0), LoadLE64(s, n-8), n)
	case n >= 4:
		return Hash4to8(LoadLE32(s, 0), LoadLE32(s, n-4), n)
	}
	return xxh3.HashString(s)
}

// Hash9to16 is XXH3-64 (default secret, words 24-55) of a string of n = 9 to
// 16 bytes given its first and last 8 bytes (LoadLE64). Hash4to8 is the same
// for n = 4 to 8 bytes and their first and last 4 (LoadLE32). Both inline
// into a caller's loop, as HashString does not: ids of 4 to 16 bytes are
// nearly every attribute value ("u-13669", "a-xxgceecz"), so a hot loop
// (the cardinality guard's) dispatches on the length itself.
func Hash9to16(first, last uint64, n int) uint64 {
	lo := first ^ (0x1f67b3b7a4a44072 ^ 0x78e5c0cc4ee679cb)
	hi := last ^ (0x2172ffcc7dd05a82 ^ 0x8e2443f7744608b8)
	mh, ml := bits.Mul64(lo, hi)
	x := uint64(n) + bits.ReverseBytes64(lo) + hi + (mh ^ ml)
	x ^= x >> 37
	x *= 0x165667919e3779f9
	return x ^ x>>32
}

func Hash4to8(first, last uint32, n int) uint64 {
	x := (uint64(last) + uint64(first)<<32) ^ (0x1cad21f72c81017c ^ 0xdb979083e96dd4de)
	x ^= bits.RotateLeft64(x, 49) ^ bits.RotateLeft64(x, 24)
	x *= 0x9fb21c651e98df25
	x ^= x>>35 + uint64(n)
	x *= 0x9fb21c651e98df25
	return x ^ x>>28
}

// LoadLE64 and LoadLE32 read 8 or 4 bytes of s at i, little-endian (the
// compiler merges the byte loads into one).
func LoadLE64(s string, i int) uint64 {
	b := s[i : i+8]
	return uint64(b[0]) | uint64(b[1])<<8 | uint64(b[2])<<16 | uint64(b[3])<<24 |
		uint64(b[4])<<32 | uint64(b[5])<<40 | uint64(b[6])<<48 | uint64(b[7])<<56
}

func LoadLE32(s string, i int) uint32 {
	b := s[i : i+4]
	return uint32(b[0]) | uint32(b[1])<<8 | uint32(b[2])<<16 | uint32(b[3])<<24
}

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
		return xxh3.Hash(v.Bytes().AsRaw()) ^ 0x5
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

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

// HashString is xxhash64 (seed 0) of s. Attribute keys and values are
// mostly shorter than 32 bytes: those take xxhash64's short-input path in Go
// here, which spares the call into the library's assembly (most of the cost
// per attribute); longer strings go to the library. Same result either way.
func HashString(s string) uint64 {
	n := len(s)
	if n >= 32 {
		return xxhash.Sum64String(s)
	}
	h := xxPrime5 + uint64(n)
	i := 0
	for ; i+8 <= n; i += 8 {
		h ^= xxRound(0, le64(s[i:]))
		h = bits.RotateLeft64(h, 27)*xxPrime1 + xxPrime4
	}
	if i+4 <= n {
		h ^= uint64(le32(s[i:])) * xxPrime1
		h = bits.RotateLeft64(h, 23)*xxPrime2 + xxPrime3
		i += 4
	}
	for ; i < n; i++ {
		h ^= uint64(s[i]) * xxPrime5
		h = bits.RotateLeft64(h, 11) * xxPrime1
	}
	h ^= h >> 33
	h *= xxPrime2
	h ^= h >> 29
	h *= xxPrime3
	h ^= h >> 32
	return h
}

// xxhash64 primes.
const (
	xxPrime1 uint64 = 11400714785074694791
	xxPrime2 uint64 = 14029467366897019727
	xxPrime3 uint64 = 1609587929392839161
	xxPrime4 uint64 = 9650029242287828579
	xxPrime5 uint64 = 2870177450012600261
)

func xxRound(acc, input uint64) uint64 {
	acc += input * xxPrime2
	return bits.RotateLeft64(acc, 31) * xxPrime1
}

// le64 and le32 read little-endian words (the compiler merges the loads).
func le64(s string) uint64 {
	_ = s[7]
	return uint64(s[0]) | uint64(s[1])<<8 | uint64(s[2])<<16 | uint64(s[3])<<24 |
		uint64(s[4])<<32 | uint64(s[5])<<40 | uint64(s[6])<<48 | uint64(s[7])<<56
}

func le32(s string) uint32 {
	_ = s[3]
	return uint32(s[0]) | uint32(s[1])<<8 | uint32(s[2])<<16 | uint32(s[3])<<24
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

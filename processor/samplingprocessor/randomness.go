package samplingprocessor // import "github.com/anvil/anvilcol/processor/samplingprocessor"

import (
	"math"
	"math/rand/v2"

	"github.com/open-telemetry/opentelemetry-collector-contrib/pkg/sampling"
	"go.opentelemetry.io/collector/pdata/pcommon"
)

// Where an item's 56 bits of randomness come from, in order of preference:
//  1. an explicit randomness value (`ot=rv:` in a span's tracestate,
//     `sampling.randomness` on a log record), as OpenTelemetry specifies;
//  2. the trace id's low 56 bits (W3C Trace Context Level 2 random flag
//     semantics), so every span and log record of a trace decides alike;
//  3. a hash of the hash_attribute's value, so records sharing it decide alike;
//  4. a random number.

// randomnessOf returns the randomness for an item without explicit
// randomness: trace id, else hash_attribute, else random.
func randomnessOf(tid pcommon.TraceID, attrs pcommon.Map, hashAttr string) sampling.Randomness {
	if !tid.IsEmpty() {
		return sampling.TraceIDToRandomness(tid)
	}
	if hashAttr != "" {
		if v, ok := attrs.Get(hashAttr); ok {
			if h, ok := hashValue(v); ok {
				return to56(h)
			}
		}
	}
	return to56(rand.Uint64())
}

// to56 keeps the top 56 bits of a well-mixed 64-bit value.
func to56(h uint64) sampling.Randomness {
	r, _ := sampling.UnsignedToRandomness(h >> 8)
	return r
}

const (
	fnvOffset64 = 14695981039346656037
	fnvPrime64  = 1099511628211
)

// hashValue hashes an attribute value without allocating: FNV-1a over its
// bytes (a type tag first, so 1 and "1" differ), then a 64-bit finaliser so
// every output bit depends on every input bit. The function is fixed, so two
// collectors decide a given value identically. Empty values do not count.
func hashValue(v pcommon.Value) (uint64, bool) {
	h := fnv64(fnvOffset64)
	switch v.Type() {
	case pcommon.ValueTypeStr:
		s := v.Str()
		if s == "" {
			return 0, false
		}
		h = h.byte('s')
		for i := 0; i < len(s); i++ {
			h = h.byte(s[i])
		}
	case pcommon.ValueTypeInt:
		h = h.byte('i').uint64(uint64(v.Int()))
	case pcommon.ValueTypeDouble:
		h = h.byte('d').uint64(math.Float64bits(v.Double()))
	case pcommon.ValueTypeBool:
		if v.Bool() {
			h = h.byte('b').byte(1)
		} else {
			h = h.byte('b').byte(0)
		}
	case pcommon.ValueTypeBytes:
		bs := v.Bytes()
		if bs.Len() == 0 {
			return 0, false
		}
		h = h.byte('y')
		for i := 0; i < bs.Len(); i++ {
			h = h.byte(bs.At(i))
		}
	default:
		return 0, false
	}
	return mix64(uint64(h)), true
}

// fnv64 is an FNV-1a state.
type fnv64 uint64

func (h fnv64) byte(b byte) fnv64 { return (h ^ fnv64(b)) * fnvPrime64 }

func (h fnv64) uint64(x uint64) fnv64 {
	for i := 0; i < 8; i++ {
		h = h.byte(byte(x >> (8 * i)))
	}
	return h
}

// mix64 is the MurmurHash3 64-bit finaliser.
func mix64(h uint64) uint64 {
	h ^= h >> 33
	h *= 0xff51afd7ed558ccd
	h ^= h >> 33
	h *= 0xc4ceb9fe1a85ec53
	h ^= h >> 33
	return h
}

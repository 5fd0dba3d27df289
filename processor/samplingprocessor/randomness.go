package samplingprocessor // import "github.com/anvil/anvilcol/processor/samplingprocessor"

import (
	"encoding/binary"
	"math"
	"math/rand/v2"

	"github.com/cespare/xxhash/v2"
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

// to56 keeps the top 56 bits of a well-mixed 64-bit value: the randomness
// an item is kept by when it is at least the rule's threshold.
func to56(h uint64) sampling.Randomness {
	r, _ := sampling.UnsignedToRandomness(h >> 8)
	return r
}

// hashValue is the sampling hash of a hash_attribute value, part of the
// sampling protocol (README, "The hash_attribute hash"): XXH64 with seed 0
// of the value's bytes — a string's UTF-8 bytes, a byte string's bytes, an
// int's 8 bytes little-endian (two's complement), a double's IEEE 754 bits
// little-endian (-0 as +0), a bool's one byte (1 true, 0 false). Empty
// strings and byte strings, maps and slices do not count. It must not change:
// golden vectors in randomness_test.go pin it.
func hashValue(v pcommon.Value) (uint64, bool) {
	var b [8]byte
	switch v.Type() {
	case pcommon.ValueTypeStr:
		if v.Str() == "" {
			return 0, false
		}
		return xxhash.Sum64String(v.Str()), true
	case pcommon.ValueTypeBytes:
		if v.Bytes().Len() == 0 {
			return 0, false
		}
		return xxhash.Sum64(v.Bytes().AsRaw()), true
	case pcommon.ValueTypeInt:
		binary.LittleEndian.PutUint64(b[:], uint64(v.Int()))
		return xxhash.Sum64(b[:]), true
	case pcommon.ValueTypeDouble:
		f := v.Double()
		if f == 0 {
			f = 0 // -0 decides as +0
		}
		binary.LittleEndian.PutUint64(b[:], math.Float64bits(f))
		return xxhash.Sum64(b[:]), true
	case pcommon.ValueTypeBool:
		if v.Bool() {
			b[0] = 1
		}
		return xxhash.Sum64(b[:1]), true
	}
	return 0, false
}

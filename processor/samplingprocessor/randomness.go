package samplingprocessor // import "github.com/anvil/anvilcol/processor/samplingprocessor"

import (
	"math/rand/v2"

	"github.com/open-telemetry/opentelemetry-collector-contrib/pkg/sampling"
	"go.opentelemetry.io/collector/pdata/pcommon"

	"github.com/anvil/anvilcol/internal/metricstate"
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

// hashValue hashes an attribute value with the series hash every component
// uses (metricstate.HashValue: xxhash64 without a seed, typed so 1 and "1"
// differ), so two collectors decide a given value identically. Empty values
// and maps, slices and empty byte strings do not count.
func hashValue(v pcommon.Value) (uint64, bool) {
	switch v.Type() {
	case pcommon.ValueTypeStr:
		if v.Str() == "" {
			return 0, false
		}
	case pcommon.ValueTypeBytes:
		if v.Bytes().Len() == 0 {
			return 0, false
		}
	case pcommon.ValueTypeInt, pcommon.ValueTypeDouble, pcommon.ValueTypeBool:
	default:
		return 0, false
	}
	return metricstate.HashValue(v), true
}

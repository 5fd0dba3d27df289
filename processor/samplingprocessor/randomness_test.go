package samplingprocessor

import (
	"math"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pcommon"
)

// TestHashAttributeGoldenVectors pins the hash_attribute protocol (README,
// "The hash_attribute hash"): collectors of every version must decide these
// values alike. A failure here is a protocol change, not a test to update.
func TestHashAttributeGoldenVectors(t *testing.T) {
	rates := []float64{0.01, 0.1, 0.5}
	tests := []struct {
		v    pcommon.Value
		hash uint64
		keep []bool // at rates
	}{
		{pcommon.NewValueStr("abc"), 0x44bc2cf5ad770999, []bool{false, false, false}}, // XXH64's reference vector
		{pcommon.NewValueStr("u-4"), 0xf08947b500b567db, []bool{false, true, true}},
		{pcommon.NewValueStr("u-82"), 0xffaa092187b84c52, []bool{true, true, true}},
		{pcommon.NewValueStr("u-13669"), 0x869a8bb26c6549af, []bool{false, false, true}},
		{pcommon.NewValueStr("assignment-000042"), 0x13b2f21dd4306538, []bool{false, false, false}},
		{pcommon.NewValueInt(13669), 0x4edc30f4dc070b9a, []bool{false, false, false}},
		{pcommon.NewValueInt(-7), 0xa8d154f80f8cba5a, []bool{false, false, true}},
		{pcommon.NewValueDouble(0.5), 0x48cb5e118059da42, []bool{false, false, false}},
		{pcommon.NewValueBool(true), 0x8a4127811b21e730, []bool{false, false, true}},
		{pcommon.NewValueBool(false), 0xe934a84adb052768, []bool{false, true, true}},
		{bytesValue(1, 2, 3), 0x743e13ee0c4ee5a5, []bool{false, false, false}},
	}
	precision := createDefaultConfig().(*Config).SamplingPrecision
	for _, tt := range tests {
		h, ok := hashValue(tt.v)
		require.True(t, ok, tt.v.AsString())
		assert.Equal(t, tt.hash, h, "%s %s: %#016x", tt.v.Type(), tt.v.AsString(), h)
		for i, rate := range rates {
			r, err := newRule("r", rate, precision)
			require.NoError(t, err)
			assert.Equal(t, tt.keep[i], r.threshold.ShouldSample(to56(h)), "%s at %v", tt.v.AsString(), rate)
		}
	}
}

func bytesValue(b ...byte) pcommon.Value {
	v := pcommon.NewValueBytes()
	v.Bytes().FromRaw(b)
	return v
}

func TestHashAttributeValuesThatDoNotCount(t *testing.T) {
	for _, v := range []pcommon.Value{pcommon.NewValueStr(""), pcommon.NewValueBytes(), pcommon.NewValueMap(), pcommon.NewValueSlice(), pcommon.NewValueEmpty()} {
		_, ok := hashValue(v)
		assert.False(t, ok, v.Type().String())
	}
	pos, _ := hashValue(pcommon.NewValueDouble(0))
	neg, _ := hashValue(pcommon.NewValueDouble(math.Copysign(0, -1)))
	assert.Equal(t, pos, neg, "-0 decides as +0")
	one, _ := hashValue(pcommon.NewValueInt(1))
	str, _ := hashValue(pcommon.NewValueStr("1"))
	assert.NotEqual(t, one, str, "an int is not its decimal text")
}

package cardinalityguardprocessor // import "github.com/anvil/anvilcol/processor/cardinalityguardprocessor"

import (
	"hash/maphash"
	"math"
	"math/bits"
	"unsafe"

	"go.opentelemetry.io/collector/pdata/pcommon"
)

// Series identities are 64-bit hashes: state is keyed by them, never by copies
// of attribute maps, which is what keeps memory per tracked series small.
// Attribute sets hash order-independently (a sum of per-pair hashes), so the
// same attributes in another order are the same series.

var (
	seed     = maphash.MakeSeed()
	hashSeed = maphash.String(seed, "cardinality_guard") // per process
)

const (
	prime1 = 0x9E3779B97F4A7C15
	prime2 = 0xC2B2AE3D27D4EB4F
)

// mix is the splitmix64 finaliser.
func mix(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xBF58476D1CE4E5B9
	x ^= x >> 27
	x *= 0x94D049BB133111EB
	x ^= x >> 31
	return x
}

// wyhash constants.
const (
	wyp0 = 0xa0761d6478bd642f
	wyp1 = 0xe7037ed1a0b428db
	wyp2 = 0x8ebc6af09c88c6e3
)

func mum(a, b uint64) uint64 {
	hi, lo := bits.Mul64(a, b)
	return hi ^ lo
}

func load64(p unsafe.Pointer, off int) uint64 { return *(*uint64)(unsafe.Add(p, off)) }
func load32(p unsafe.Pointer, off int) uint64 { return uint64(*(*uint32)(unsafe.Add(p, off))) }
func load8(p unsafe.Pointer, off int) uint64  { return uint64(*(*uint8)(unsafe.Add(p, off))) }

// hashString is wyhash (in-process only, so byte order does not matter). It
// is inlined into the per-attribute loop where hash/maphash's call overhead
// was most of the guard's cost; attribute keys and values are short.
func hashString(s string) uint64 {
	n := len(s)
	p := unsafe.Pointer(unsafe.StringData(s))
	h := hashSeed ^ wyp0
	off := 0
	for ; n-off > 16; off += 16 {
		h = mum(load64(p, off)^wyp1, load64(p, off+8)^h)
	}
	var a, b uint64
	switch rest := n - off; {
	case rest >= 8:
		a, b = load64(p, off), load64(p, n-8)
	case rest >= 4:
		a, b = load32(p, off), load32(p, n-4)
	case rest > 0:
		a = load8(p, off)<<16 | load8(p, off+rest>>1)<<8 | load8(p, n-1)
	}
	return mum(mum(a^wyp1, b^h)^wyp2, uint64(n)^wyp1)
}

// kvHash hashes one attribute; the key and value are mixed asymmetrically so
// {a: "b"} and {b: "a"} differ.
func kvHash(k string, v pcommon.Value) uint64 {
	return mum(hashString(k)^wyp2, hashValue(v)^wyp1)
}

func hashValue(v pcommon.Value) uint64 {
	switch v.Type() {
	case pcommon.ValueTypeStr:
		return hashString(v.Str())
	case pcommon.ValueTypeInt:
		return mix(uint64(v.Int()) ^ 0x1)
	case pcommon.ValueTypeDouble:
		return mix(math.Float64bits(v.Double()) ^ 0x2)
	case pcommon.ValueTypeBool:
		if v.Bool() {
			return mix(0x3)
		}
		return mix(0x4)
	case pcommon.ValueTypeBytes:
		return maphash.Bytes(seed, v.Bytes().AsRaw()) ^ 0x5
	case pcommon.ValueTypeSlice:
		s := v.Slice()
		h := uint64(0x6)
		for i := 0; i < s.Len(); i++ {
			h = mix(h*prime2 + hashValue(s.At(i)))
		}
		return h
	case pcommon.ValueTypeMap:
		return hashMap(v.Map()) ^ 0x7
	}
	return 0
}

// hashMap hashes a whole attribute map (resource, scope, nested values).
func hashMap(m pcommon.Map) uint64 {
	var h uint64
	for k, v := range m.All() {
		h += kvHash(k, v)
	}
	return mix(h + uint64(m.Len()))
}

func hashScope(s pcommon.InstrumentationScope) uint64 {
	return mix(hashString(s.Name())*prime1 + hashString(s.Version())*prime2 + hashMap(s.Attributes()))
}

// hashTimestamp folds a start timestamp into 32 bits; only equality matters
// (a changed start time is a reset). 0 stays 0 ("unknown").
func hashTimestamp(t pcommon.Timestamp) uint32 {
	if t == 0 {
		return 0
	}
	h := uint32(mix(uint64(t)))
	if h == 0 {
		h = 1
	}
	return h
}

package cardinalityguardprocessor // import "github.com/anvil/anvilcol/processor/cardinalityguardprocessor"

import (
	"strings"
	"unsafe"

	"go.opentelemetry.io/collector/pdata/pcommon"
)

// keyInfo is what the guard knows about one attribute key of a stream: its
// hash and whether it survives. Points of one metric nearly always carry the
// same keys in the same order (SDKs sort attribute sets), so a stream keeps
// its keys by position: checking a point's key against the one remembered at
// its position is a string comparison, cheaper than hashing the key and
// scanning the drop list for every attribute of every point.
type keyInfo struct {
	key  string // owned copy: never a batch's memory
	hash uint64 // hashString(key) ^ wyp2, the key half of kvHash
	keep bool
}

// maxLayoutKeys bounds the keys remembered per stream; further keys are
// hashed each time (correct, only slower).
const maxLayoutKeys = 32

// learnKey finds key anywhere in the layout, else hashes it and remembers it
// (the fast path, the key at its remembered position, is inlined in hash).
func (st *stream) learnKey(key string) (uint64, bool) {
	for j := range st.layout {
		if st.layout[j].key == key {
			return st.layout[j].hash, st.layout[j].keep
		}
	}
	h, keep := hashString(key)^wyp2, st.rules.keep(key)
	if len(st.layout) < maxLayoutKeys {
		st.layout = append(st.layout, keyInfo{key: strings.Clone(key), hash: h, keep: keep})
	}
	return h, keep
}

// hash is rules.hash through the stream's key layout: the hash of the whole
// attribute set (the input series) and of the surviving subset (the output
// series), and how many attributes would be dropped. The values of dropped
// attributes are read only when needFull: only cumulative streams keep state
// per input series; otherwise full is 0. It does not modify attrs.
func (st *stream) hash(attrs pcommon.Map, needFull bool) (full, reduced uint64, dropped int) {
	var f, k uint64
	n, i := 0, 0
	layout := st.layout
	for key, v := range attrs.All() {
		var kh uint64
		var keep bool
		if i < len(layout) && sameKey(layout[i].key, key) {
			kh, keep = layout[i].hash, layout[i].keep
		} else {
			kh, keep = st.learnKey(key)
			layout = st.layout
		}
		i++
		if !keep {
			dropped++
			if !needFull {
				continue
			}
		}
		// Str is "" for every other type: one type check for the common
		// case; values of 8 to 16 bytes take hashString's path inline.
		var vh uint64
		if s := v.Str(); len(s) >= 8 && len(s) <= 16 {
			p := unsafe.Pointer(unsafe.StringData(s))
			vh = mum(mum(load64(p, 0)^wyp1, load64(p, len(s)-8)^hashSeed^wyp0)^wyp2, uint64(len(s))^wyp1)
		} else if s != "" {
			vh = hashString(s)
		} else {
			vh = hashValue(v)
		}
		h := mum(kh, vh^wyp1)
		f += h
		if keep {
			k += h
			n++
		}
	}
	if needFull {
		full = mix(f + uint64(i))
	}
	return full, mix(k + uint64(n)), dropped
}

// sameKey is a == b, without a call for keys of 8 to 16 bytes (most
// attribute keys): two overlapping 8-byte loads cover every byte.
func sameKey(a, b string) bool {
	n := len(a)
	if n != len(b) {
		return false
	}
	if n < 8 || n > 16 {
		return a == b
	}
	p, q := unsafe.Pointer(unsafe.StringData(a)), unsafe.Pointer(unsafe.StringData(b))
	return load64(p, 0) == load64(q, 0) && load64(p, n-8) == load64(q, n-8)
}

package cardinalityguardprocessor // import "github.com/anvil/anvilcol/processor/cardinalityguardprocessor"

import (
	"strings"

	"go.opentelemetry.io/collector/pdata/pcommon"

	"github.com/anvil/anvilcol/internal/metricstate"
)

// keyInfo is what the guard knows about one attribute key of a stream: its
// hash and whether it survives. Points of one metric nearly always carry the
// same keys in the same order (SDKs sort attribute sets), so a stream keeps
// its keys by position: checking a point's key against the one remembered at
// its position is a string comparison, cheaper than hashing the key and
// scanning the rules for every attribute of every point.
type keyInfo struct {
	key  string // owned copy: never a batch's memory
	hash uint64 // metricstate.HashKey(key)
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
	h, keep := metricstate.HashKey(key), st.rules.keep(key)
	if len(st.layout) < maxLayoutKeys {
		st.layout = append(st.layout, keyInfo{key: strings.Clone(key), hash: h, keep: keep})
	}
	return h, keep
}

// hash walks a point's attributes once through the stream's key layout: it
// returns the series identity (metricstate.HashAttributes) of the whole
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
		// Str is "" for every other type: one read for the common case;
		// strings of 4 to 16 bytes hash inline (metricstate.HashString's
		// own short paths, which it cannot inline itself).
		var vh uint64
		switch s := v.Str(); {
		case len(s) > 16 || len(s) > 0 && len(s) < 4:
			vh = metricstate.HashString(s)
		case len(s) > 8:
			vh = metricstate.Hash9to16(metricstate.LoadLE64(s, 0), metricstate.LoadLE64(s, len(s)-8), len(s))
		case len(s) >= 4:
			vh = metricstate.Hash4to8(metricstate.LoadLE32(s, 0), metricstate.LoadLE32(s, len(s)-4), len(s))
		default:
			vh = metricstate.HashValue(v)
		}
		h := metricstate.HashPair(kh, vh)
		f += h
		if keep {
			k += h
			n++
		}
	}
	if needFull {
		full = metricstate.SetHash(f, i)
	}
	return full, metricstate.SetHash(k, n), dropped
}

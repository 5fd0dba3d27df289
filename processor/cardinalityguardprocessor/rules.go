package cardinalityguardprocessor // import "github.com/anvil/anvilcol/processor/cardinalityguardprocessor"

import "go.opentelemetry.io/collector/pdata/pcommon"

// rules is the resolved guard for one metric: which attributes survive and
// how many output series it may have. Resolved once per metric stream.
type rules struct {
	allow bool     // keys is an allowlist (else a drop list)
	keys  []string // short lists: a linear scan beats a map
	set   map[string]struct{}
	cap   int                              // 0 = unlimited
	drop  func(string, pcommon.Value) bool // for RemoveIf, made once (no per-call closure)
}

const linearScanMax = 8

func newRules(allow bool, keys []string, maxSeries int) *rules {
	r := &rules{allow: allow, keys: append([]string(nil), keys...), cap: maxSeries}
	r.drop = func(k string, _ pcommon.Value) bool { return !r.keep(k) }
	if len(keys) > linearScanMax {
		r.set = make(map[string]struct{}, len(keys))
		for _, k := range keys {
			r.set[k] = struct{}{}
		}
	}
	return r
}

func (r *rules) listed(k string) bool {
	if r.set != nil {
		_, ok := r.set[k]
		return ok
	}
	for _, x := range r.keys {
		if x == k {
			return true
		}
	}
	return false
}

// keep reports whether attribute k survives.
func (r *rules) keep(k string) bool { return r.listed(k) == r.allow }

// strip removes the attributes that do not survive.
func (r *rules) strip(attrs pcommon.Map) {
	attrs.RemoveIf(r.drop)
}

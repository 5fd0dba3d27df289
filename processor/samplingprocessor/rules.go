package samplingprocessor // import "github.com/anvil/anvilcol/processor/samplingprocessor"

import (
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/open-telemetry/opentelemetry-collector-contrib/pkg/sampling"
	"go.opentelemetry.io/collector/pdata/pcommon"

	"github.com/anvil/anvilcol/internal/event"
	"github.com/anvil/anvilcol/internal/eventmatch"
)

// maxCachedNames bounds the event-name -> candidate-rules cache. Anvil has a
// few dozen event names; names beyond the bound (a misbehaving OTLP source
// inventing names) are matched uncached, which is slower but never allocates.
const maxCachedNames = 4096

// rule is a compiled RuleConfig. The default rate is the last rule of a
// ruleSet, with no events and no attributes.
type rule struct {
	name    string
	matcher *eventmatch.Matcher
	attrs   []attrMatch

	rate      float64
	threshold sampling.Threshold
	// tvalue and otTraceState are the threshold's encodings, computed once
	// so marking a kept item does not format anything.
	tvalue       string
	otTraceState string
	adjusted     float64

	// limiter is the max_per_second token bucket; nil without a cap.
	limiter *tokenBucket
}

// keepsAll reports whether the rate alone keeps every item (rate 1).
func (r *rule) keepsAll() bool { return r.threshold == sampling.AlwaysSampleThreshold }

// attrMatch is one exact attribute condition, with the expected value parsed
// once into every type an attribute might carry, so matching never formats.
type attrMatch struct {
	key   string
	str   string
	i     int64
	isInt bool
	f     float64
	isF   bool
	b     bool
	isB   bool
}

func newAttrMatch(key, want string) attrMatch {
	m := attrMatch{key: key, str: want}
	if i, err := strconv.ParseInt(want, 10, 64); err == nil {
		m.i, m.isInt = i, true
	}
	if f, err := strconv.ParseFloat(want, 64); err == nil {
		m.f, m.isF = f, true
	}
	if b, err := strconv.ParseBool(want); err == nil {
		m.b, m.isB = b, true
	}
	return m
}

func (m *attrMatch) match(attrs pcommon.Map) bool {
	v, ok := attrs.Get(m.key)
	if !ok {
		return false
	}
	switch v.Type() {
	case pcommon.ValueTypeStr:
		return v.Str() == m.str
	case pcommon.ValueTypeInt:
		return m.isInt && v.Int() == m.i
	case pcommon.ValueTypeDouble:
		return m.isF && v.Double() == m.f
	case pcommon.ValueTypeBool:
		return m.isB && v.Bool() == m.b
	}
	return false
}

func (r *rule) attrsMatch(attrs pcommon.Map) bool {
	for i := range r.attrs {
		if !r.attrs[i].match(attrs) {
			return false
		}
	}
	return true
}

// ruleSet holds the compiled rules in order, the default rule last, and a
// copy-on-write cache from event name to the indices of the rules whose
// events match it. Reads are lock-free; the cache only grows.
type ruleSet struct {
	rules []rule // len(cfg.Rules)+1; the last is the default rate

	cache atomic.Pointer[map[nameKey][]int32]
	mu    sync.Mutex // serialises cache writers
}

// nameKind says which names an item matches rules by. A log record matches
// by its event name; a span by its name and by the name of the event that
// ended it (ADR-008's events: `<name>.exception` for a span with status
// Error, `<name>.stop` otherwise), so a `*.exception` rule keeps failed
// operations' spans as it keeps their log records, and logs and spans of one
// operation sample alike.
type nameKind uint8

const (
	byEventName nameKind = iota // log records
	bySpanOK                    // spans ended by `<name>.stop`
	bySpanError                 // spans ended by `<name>.exception`
)

type nameKey struct {
	name string
	kind nameKind
}

// names returns the names an item of this kind is matched by.
func (k nameKind) names(name string) []string {
	switch k {
	case bySpanOK:
		return []string{name, name + "." + event.SuffixStop}
	case bySpanError:
		return []string{name, name + "." + event.SuffixException}
	}
	return []string{name}
}

// matches reports whether r's events match any of names.
func (r *rule) matches(names []string) bool {
	for _, n := range names {
		if r.matcher.Match(n) {
			return true
		}
	}
	return false
}

func newRuleSet(cfg *Config) (*ruleSet, error) {
	rs := &ruleSet{rules: make([]rule, 0, len(cfg.Rules)+1)}
	for i := range cfg.Rules {
		rc := &cfg.Rules[i]
		m, err := eventmatch.New(rc.Events)
		if err != nil {
			return nil, fmt.Errorf("`rules[%d].events%s", i, strings.Replace(err.Error(), "]:", "]`:", 1))
		}
		r, err := newRule(rc.Name, rc.rate(), cfg.SamplingPrecision)
		if err != nil {
			return nil, fmt.Errorf("`rules[%d].rate`: %w", i, err)
		}
		r.matcher = m
		keys := make([]string, 0, len(rc.Attributes))
		for k := range rc.Attributes {
			keys = append(keys, k)
		}
		sort.Strings(keys) // deterministic order
		for _, k := range keys {
			r.attrs = append(r.attrs, newAttrMatch(k, rc.Attributes[k]))
		}
		if rc.MaxPerSecond > 0 {
			r.limiter = newTokenBucket(rc.MaxPerSecond)
		}
		rs.rules = append(rs.rules, r)
	}
	def, err := newRule(DefaultRuleName, cfg.DefaultRate, cfg.SamplingPrecision)
	if err != nil {
		return nil, fmt.Errorf("`default_rate`: %w", err)
	}
	rs.rules = append(rs.rules, def)
	empty := map[nameKey][]int32{}
	rs.cache.Store(&empty)
	return rs, nil
}

func newRule(name string, rate float64, precision int) (rule, error) {
	r := rule{name: name, rate: rate}
	switch {
	case rate >= 1:
		r.threshold = sampling.AlwaysSampleThreshold
		r.adjusted = 1
	case rate <= 0:
		r.threshold = sampling.NeverSampleThreshold
	default:
		th, err := sampling.ProbabilityToThresholdWithPrecision(rate, precision)
		if err != nil {
			return r, err
		}
		r.threshold = th
		r.adjusted = th.AdjustedCount()
		// A rate such as 0.1 is not a binary fraction; at full precision the
		// threshold's probability rounds back to the configured rate, so
		// report 1/rate exactly rather than 9.999999999999998.
		if math.Abs(th.Probability()-rate) <= rate*1e-12 {
			r.adjusted = 1 / rate
		}
	}
	r.tvalue = r.threshold.TValue()
	if r.tvalue != "" {
		r.otTraceState = "ot=th:" + r.tvalue
	}
	return r, nil
}

// defaultRule is the rule for items that match no configured rule.
func (rs *ruleSet) defaultRule() int32 { return int32(len(rs.rules) - 1) }

// candidates returns the indices of the rules whose events match an item
// named name of kind k, in order, from the cache; on a miss it matches every
// rule once and caches the result (bounded by maxCachedNames). ok is false
// when the cache is full and the caller must match uncached.
func (rs *ruleSet) candidates(name string, k nameKind) (idx []int32, ok bool) {
	key := nameKey{name, k}
	m := *rs.cache.Load()
	if c, hit := m[key]; hit {
		return c, true
	}
	if len(m) >= maxCachedNames {
		return nil, false
	}
	rs.mu.Lock()
	defer rs.mu.Unlock()
	m = *rs.cache.Load()
	if c, hit := m[key]; hit {
		return c, true
	}
	if len(m) >= maxCachedNames {
		return nil, false
	}
	var c []int32
	names := k.names(name)
	for i := range rs.rules[:len(rs.rules)-1] {
		if rs.rules[i].matches(names) {
			c = append(c, int32(i))
		}
	}
	next := make(map[nameKey][]int32, len(m)+1)
	for k, v := range m {
		next[k] = v
	}
	next[nameKey{strings.Clone(name), k}] = c
	rs.cache.Store(&next)
	return c, true
}

// pick returns the index of the rule that decides an item with this event
// name and attributes: the first candidate whose attributes match, else the
// default rule.
func (rs *ruleSet) pick(cands []int32, attrs pcommon.Map) int32 {
	for _, i := range cands {
		if rs.rules[i].attrsMatch(attrs) {
			return i
		}
	}
	return rs.defaultRule()
}

// pickUncached is pick for names the cache has no room for.
func (rs *ruleSet) pickUncached(name string, k nameKind, attrs pcommon.Map) int32 {
	names := k.names(name)
	for i := range rs.rules[:len(rs.rules)-1] {
		r := &rs.rules[i]
		if r.matches(names) && r.attrsMatch(attrs) {
			return int32(i)
		}
	}
	return rs.defaultRule()
}

// matcher is a per-batch view of a ruleSet that remembers the last event
// name's candidates: batches are runs of the same few events, so most items
// skip even the cache's map lookup.
type matcher struct {
	rs       *ruleSet
	lastName string
	lastKind nameKind
	lastC    []int32
	lastOK   bool
	primed   bool
}

func (m *matcher) ruleFor(name string, k nameKind, attrs pcommon.Map) int32 {
	if !m.primed || name != m.lastName || k != m.lastKind {
		m.lastC, m.lastOK = m.rs.candidates(name, k)
		m.lastName, m.lastKind, m.primed = name, k, true
	}
	if !m.lastOK {
		return m.rs.pickUncached(name, k, attrs)
	}
	return m.rs.pick(m.lastC, attrs)
}

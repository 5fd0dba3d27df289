package samplingprocessor // import "github.com/anvil/anvilcol/processor/samplingprocessor"

import (
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"

	"github.com/open-telemetry/opentelemetry-collector-contrib/pkg/sampling"
	"go.opentelemetry.io/collector/pdata/pcommon"

	"github.com/anvil/anvilcol/internal/event"
	"github.com/anvil/anvilcol/internal/eventmatch"
)

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

// ruleSet holds the compiled rules in order, the default rule last, and the
// index that selects the configured rules an item's event matches (shared
// with every component: internal/eventmatch). A log record is selected by its
// event name; a span by its name and by the event that ended it
// (`<name>.exception` for a span with status Error, `<name>.stop`
// otherwise), so a `*.exception` rule keeps failed operations' spans as it
// keeps their log records, and logs and spans of one operation sample alike.
type ruleSet struct {
	rules []rule // len(cfg.Rules)+1; the last is the default rate
	index *eventmatch.Index
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
	matchers := make([]*eventmatch.Matcher, len(cfg.Rules))
	for i := range matchers {
		matchers[i] = rs.rules[i].matcher
	}
	rs.index = eventmatch.NewIndex(matchers)
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

// pick returns the index of the rule that decides an item: the first
// candidate (of the rules its event matches) whose attributes match, else
// the default rule.
func (rs *ruleSet) pick(cands []int32, attrs pcommon.Map) int32 {
	for _, i := range cands {
		if rs.rules[i].attrsMatch(attrs) {
			return i
		}
	}
	return rs.defaultRule()
}

// ruleFor returns the index of the rule that decides an item, remembering
// the batch's last event (memo).
func (rs *ruleSet) ruleFor(memo *eventmatch.Memo, k event.Key, attrs pcommon.Map) int32 {
	return rs.pick(memo.Select(k).Rules, attrs)
}

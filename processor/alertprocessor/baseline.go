package alertprocessor // import "github.com/anvil/anvilcol/processor/alertprocessor"

import (
	"math"
	"time"
)

// A baseline rule (`baseline:`) compares its window's statistic with the
// same statistic of the same group over the `baseline.window` that ended
// `baseline.offset` ago. Beside its window, each group of such a rule keeps
// a history of its data in coarser slots (historyWidth) that reaches
// offset + baseline.window back; the baseline is the statistic of the
// history slots that end within (now − offset − baseline.window, now − offset].

// The history of a group is kept in slots of baseline.window /
// historySlotsPerBaseline, unless offset + baseline.window would then need
// more than maxHistorySlots of them; never narrower than evaluation_interval.
const (
	historySlotsPerBaseline = 144
	maxHistorySlots         = 576
)

// baseline is a rule's compiled `baseline` and `compare`.
type baseline struct {
	window, offset time.Duration
	width          time.Duration // of a history slot
	compare        Compare
	normalise      bool // the stat grows with the window's length: the baseline is scaled to the rule's window
}

func newBaseline(rc *RuleConfig, st Stat, eval time.Duration) *baseline {
	if rc.Baseline == nil {
		return nil
	}
	b := &baseline{window: rc.Baseline.Window, offset: rc.Baseline.Offset, compare: rc.Compare, normalise: st.scalesWithWindow()}
	if b.compare == CompareUnset {
		b.compare = CompareRatio
	}
	b.width = max(eval, b.window/historySlotsPerBaseline, b.span()/maxHistorySlots)
	return b
}

// span is how far back the history reaches: offset + window.
func (b *baseline) span() time.Duration { return b.offset + b.window }

// maxSlots bounds the history slots of a group: those that end after
// now − span and start by now, plus one the data of the next evaluation
// interval may open.
func (b *baseline) maxSlots() int {
	return int((b.span()+b.width-1)/b.width) + 2
}

// value is the baseline statistic of g at now and its observations, the
// statistic normalised to the rule's window (× window / the span of the
// history slots taken) for a stat that grows with the window's length. ok
// is false for a group younger than offset + baseline.window (its first
// observation later than now − span) and when there is nothing to compute
// the statistic from.
func (b *baseline) value(g *group, now time.Time, newAcc func() accumulator, window time.Duration) (v, n float64, ok bool) {
	g.hist.expire(now, b.span(), b.width)
	if g.since.IsZero() || now.Sub(g.since) < b.span() {
		return math.NaN(), 0, false
	}
	end := now.Add(-b.offset)
	// The slots taken cover [from, end) truncated to slot starts: exactly
	// baseline.window when the slot width divides it.
	covered := end.Truncate(b.width).Sub(end.Add(-b.window).Truncate(b.width))
	if covered <= 0 {
		return math.NaN(), 0, false
	}
	i := g.hist.ending(end, b.width)
	key := baselineKey{slots: i, covered: covered}
	if i > 0 {
		key.first = g.hist.slots[0].start
	}
	if c := &g.base; c.valid && c.key == key {
		return c.v, c.n, c.ok
	}
	acc, n := g.hist.total(i, newAcc)
	v, ok = acc.value(covered)
	if !ok {
		v = math.NaN()
	} else if b.normalise {
		v *= float64(window) / float64(covered)
	}
	g.base = baselineCache{key: key, valid: true, v: v, n: n, ok: ok}
	return v, n, ok
}

// baselineCache is a group's last baseline. The slots a baseline takes end
// before now − offset, so data no longer enters them (late data goes into
// the newest slot): the baseline changes only when a slot enters or leaves
// it, once per history slot width, and is merged again only then.
type baselineCache struct {
	key   baselineKey
	valid bool // false until computed, and after the history is replaced (a restore)
	v, n  float64
	ok    bool
}

// baselineKey identifies the slots a baseline took: the oldest, how many,
// and the span they cover.
type baselineKey struct {
	first   time.Time
	slots   int
	covered time.Duration
}

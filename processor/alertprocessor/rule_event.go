package alertprocessor // import "github.com/anvil/anvilcol/processor/alertprocessor"

import (
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"

	"github.com/anvil/anvilcol/internal/event"
	"github.com/anvil/anvilcol/internal/eventmatch"
)

// eventRule is a rule on events (`event:`), log records and spans: each
// matching event, or its `field`, goes into its group's window, once
// whichever signals carry it (seen).
type eventRule struct {
	*rule
	seen eventSeen // the events it counted recently; under the engine lock
}

func newEventRule(r *rule, eval time.Duration) *eventRule {
	return &eventRule{rule: r, seen: newEventSeen(eval)}
}

// observe adds one event at now: v is its field's value (ok: a number was
// read; present: the field exists); a rule without field counts the event.
func (r *eventRule) observe(v float64, ok, present bool, attrs, res pcommon.Map, now time.Time) {
	if r.cfg.Field == "" {
		v = 1
	} else if !ok {
		reason := reasonFieldMissing
		if present {
			reason = reasonNotANumber
		}
		r.env.dropped(r.rule, reason)
		return
	}
	if g := r.groupFor(attrs, res); g != nil {
		r.addEvent(g, v, now)
	}
}

// maxSeen bounds the events a rule's eventSeen remembers per generation.
const maxSeen = 100_000

// eventSeen recognises an event its rule already counted: the anvil receiver
// sends each `...stop` and `...exception` event both as a log record and as a
// span with the same span id, and a rule that reads both signals counts the
// event once, from whichever arrives first. An event is its span id and name;
// only span-ending events are remembered (point and start events share their
// span's id with others of the same name), for one to two
// evaluation_intervals (two generations of keys, swapped every interval or
// when the current one holds maxSeen keys).
type eventSeen struct {
	cur, prev map[seenKey]struct{}
	every     time.Duration
	swapped   time.Time
}

type seenKey struct {
	span  pcommon.SpanID
	event string // interned by the index
}

func newEventSeen(every time.Duration) eventSeen {
	return eventSeen{cur: map[seenKey]struct{}{}, prev: map[seenKey]struct{}{}, every: every}
}

// again reports whether the rule already counted the event sel of span id
// span, and remembers it if not. The caller holds the engine lock.
func (s *eventSeen) again(span pcommon.SpanID, sel *eventmatch.Selection, now time.Time) bool {
	if span.IsEmpty() || (sel.Lifecycle != event.Stop && sel.Lifecycle != event.Exception) {
		return false
	}
	if now.Sub(s.swapped) >= s.every || now.Before(s.swapped) || len(s.cur) >= maxSeen {
		s.cur, s.prev = s.prev, s.cur
		clear(s.cur)
		s.swapped = now
	}
	k := seenKey{span: span, event: sel.Event}
	if _, ok := s.cur[k]; ok {
		return true
	}
	if _, ok := s.prev[k]; ok {
		return true
	}
	s.cur[k] = struct{}{}
	return false
}

package alertprocessor // import "github.com/anvil/anvilcol/processor/alertprocessor"

import (
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
)

// eventRule is a rule on events (`event:`), log records and spans: each
// matching event, or its `field`, goes into its group's window.
type eventRule struct {
	*rule
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
		g.win.at(now, r.slotWidth, r.newAcc).addEvent(v, now)
	}
}

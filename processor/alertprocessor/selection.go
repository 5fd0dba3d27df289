package alertprocessor // import "github.com/anvil/anvilcol/processor/alertprocessor"

import "github.com/anvil/anvilcol/internal/eventmatch"

// Rules are selected through internal/eventmatch, as every component selects
// events: an Index of one kind's rules (metric or event rules) answers, for an
// item's event.Key, the positions of the rules whose pattern matches it, and
// caches the answer per key. A metric is known by its name (event.Key{Name});
// a log record by its event name and a span by its name and the event that
// ended it (`<name>.stop`, `<name>.exception`), so `*.exception` selects
// failed operations from either signal. A consume call walks its batch
// through a Memo of the index (the items of a batch come in runs of one
// name), whose Select inlines into the per-item loop; an item without a name
// is read by no rule and not looked up.

// newIndex indexes the patterns of rules, in order: a Selection's Rules are
// positions in rules.
func newIndex[R alertingRule](rules []R) *eventmatch.Index {
	ms := make([]*eventmatch.Matcher, len(rules))
	for i, r := range rules {
		ms[i] = r.alerts().matcher
	}
	return eventmatch.NewIndex(ms)
}

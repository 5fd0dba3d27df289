package alertprocessor // import "github.com/anvil/anvilcol/processor/alertprocessor"

import (
	"sync"

	"github.com/anvil/anvilcol/internal/eventmatch"
)

// maxCachedNames bounds a selector's name -> rules cache.
const maxCachedNames = 10_000

// selector finds the rules of one kind that read items of a name (a metric
// name, an event name), caching the answer per name: most batches repeat a
// few names. Safe for concurrent use.
type selector[R any] struct {
	rules   []R
	matcher func(R) *eventmatch.Matcher
	mu      sync.RWMutex
	cache   map[string][]R
}

func newSelector[R any](rules []R, matcher func(R) *eventmatch.Matcher) *selector[R] {
	return &selector[R]{rules: rules, matcher: matcher, cache: map[string][]R{}}
}

// match returns the rules whose pattern matches name.
func (s *selector[R]) match(name string) []R {
	s.mu.RLock()
	rs, ok := s.cache[name]
	s.mu.RUnlock()
	if ok {
		return rs
	}
	for _, r := range s.rules {
		if s.matcher(r).Match(name) {
			rs = append(rs, r)
		}
	}
	s.mu.Lock()
	if len(s.cache) >= maxCachedNames {
		clear(s.cache)
	}
	s.cache[name] = rs
	s.mu.Unlock()
	return rs
}

// batchSelector is what one consume call keeps while it walks a batch: the
// rules of the last name it looked up (the items of one batch often share
// names).
type batchSelector[R any] struct {
	sel       *selector[R]
	lastName  string
	lastRules []R
}

// rules returns the rules that read items named name (none for "").
func (b *batchSelector[R]) rules(name string) []R {
	if name != b.lastName {
		b.lastName, b.lastRules = name, b.sel.match(name)
	}
	return b.lastRules
}

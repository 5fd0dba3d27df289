package eventmatch // import "github.com/anvil/anvilcol/internal/eventmatch"

import (
	"strings"
	"sync"
	"sync/atomic"

	"github.com/anvil/anvilcol/internal/event"
)

// MaxCachedKeys bounds an Index's cache. Anvil has a few dozen event names;
// keys beyond the bound (a misbehaving source inventing names) are selected
// uncached, which is slower and allocates.
const MaxCachedKeys = 4096

// Selection is what an Index returns for one item: the event it is
// (event.Key.Event, built once per key), that event's lifecycle, and the
// items (rules) whose patterns select it, in their configured order.
type Selection[T any] struct {
	Event     string
	Lifecycle event.Lifecycle
	Items     []T
}

// Index selects, for an item's event.Key, the rules whose patterns match any
// of the key's names (event.Key.Names), and caches the answer per key. Reads
// are lock-free (a copy-on-write map: written once per key, read for every
// item); the cache only grows, up to MaxCachedKeys. Safe for concurrent use.
type Index[T any] struct {
	items    []T
	matchers []*Matcher

	cache atomic.Pointer[map[event.Key]Selection[T]]
	mu    sync.Mutex // serialises cache writers
}

// NewIndex indexes items by the matcher of each (nil matches nothing).
func NewIndex[T any](items []T, matcher func(T) *Matcher) *Index[T] {
	ix := &Index[T]{items: items, matchers: make([]*Matcher, len(items))}
	for i, it := range items {
		ix.matchers[i] = matcher(it)
	}
	empty := map[event.Key]Selection[T]{}
	ix.cache.Store(&empty)
	return ix
}

// Select returns the selection of an item with key k.
func (ix *Index[T]) Select(k event.Key) Selection[T] {
	m := *ix.cache.Load()
	if s, hit := m[k]; hit {
		return s
	}
	if len(m) >= MaxCachedKeys {
		return ix.match(k)
	}
	ix.mu.Lock()
	defer ix.mu.Unlock()
	m = *ix.cache.Load()
	if s, hit := m[k]; hit {
		return s
	}
	if len(m) >= MaxCachedKeys {
		return ix.match(k)
	}
	k.Name = strings.Clone(k.Name) // the key may point into a batch's memory
	s := ix.match(k)
	next := make(map[event.Key]Selection[T], len(m)+1)
	for key, v := range m {
		next[key] = v
	}
	next[k] = s
	ix.cache.Store(&next)
	return s
}

func (ix *Index[T]) match(k event.Key) Selection[T] {
	s := Selection[T]{Event: k.Event()}
	_, s.Lifecycle = event.Split(s.Event)
	names := k.Names()
	for i, m := range ix.matchers {
		for _, n := range names {
			if m.Match(n) {
				s.Items = append(s.Items, ix.items[i])
				break
			}
		}
	}
	return s
}

// Memo is an Index seen through the last key it was asked for: the items of a
// batch come in runs of the same few events, so most items skip even the
// cache's map lookup. A Memo belongs to one goroutine (one batch).
type Memo[T any] struct {
	ix     *Index[T]
	key    event.Key
	sel    Selection[T]
	primed bool
}

// Memo returns a fresh Memo of ix.
func (ix *Index[T]) Memo() Memo[T] { return Memo[T]{ix: ix} }

// Select is Index.Select, remembering the last answer.
func (m *Memo[T]) Select(k event.Key) Selection[T] {
	if !m.primed || k != m.key {
		m.sel = m.ix.Select(k)
		m.key, m.primed = k, true
	}
	return m.sel
}

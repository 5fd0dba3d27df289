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
// indices of the matchers (rules) that select it, in increasing order.
type Selection struct {
	Event     string
	Lifecycle event.Lifecycle
	Rules     []int32
}

// Index selects, for an item's event.Key, the rules whose patterns match any
// of the key's names (event.Key.Names), and caches the answer per key. It is
// not generic so that Memo.Select inlines into the callers' per-item loops. Reads
// are lock-free (a copy-on-write map: written once per key, read for every
// item); the cache only grows, up to MaxCachedKeys. Safe for concurrent use.
type Index struct {
	matchers []*Matcher

	// cache holds one map per event.End keyed by name: string-keyed maps
	// take the runtime's fast string path, which a struct key does not.
	cache atomic.Pointer[[numEnds]map[string]*Selection]
	mu    sync.Mutex // serialises cache writers
}

// NewIndex indexes the matchers of a component's rules, in order (nil
// matches nothing); a Selection names them by index.
func NewIndex(matchers []*Matcher) *Index {
	ix := &Index{matchers: matchers}
	var empty [numEnds]map[string]*Selection
	ix.cache.Store(&empty)
	return ix
}

// numEnds is the number of event.End values a key can have.
const numEnds = int(event.SpanException) + 1

// Select returns the selection of an item with key k.
func (ix *Index) Select(k event.Key) Selection { return *ix.lookup(k) }

// lookup is Select by pointer: cached selections are shared and must not be
// modified.
func (ix *Index) lookup(k event.Key) *Selection {
	c := ix.cache.Load()
	if s, hit := c[k.End][k.Name]; hit {
		return s
	}
	if cachedKeys(c) >= MaxCachedKeys {
		s := ix.match(k)
		return &s
	}
	ix.mu.Lock()
	defer ix.mu.Unlock()
	c = ix.cache.Load()
	if s, hit := c[k.End][k.Name]; hit {
		return s
	}
	if cachedKeys(c) >= MaxCachedKeys {
		s := ix.match(k)
		return &s
	}
	k.Name = strings.Clone(k.Name) // the key may point into a batch's memory
	s := ix.match(k)
	next := *c
	m := make(map[string]*Selection, len(c[k.End])+1)
	for name, v := range c[k.End] {
		m[name] = v
	}
	m[k.Name] = &s
	next[k.End] = m
	ix.cache.Store(&next)
	return &s
}

func cachedKeys(c *[numEnds]map[string]*Selection) int {
	n := 0
	for _, m := range c {
		n += len(m)
	}
	return n
}

func (ix *Index) match(k event.Key) Selection {
	s := Selection{Event: k.Event()}
	_, s.Lifecycle = event.Split(s.Event)
	names := k.Names()
	for i, m := range ix.matchers {
		for _, n := range names {
			if m.Match(n) {
				s.Rules = append(s.Rules, int32(i))
				break
			}
		}
	}
	return s
}

// Memo is an Index seen through the last keys it was asked for: the items
// of a batch come in runs of a few events (a span's start and stop, the
// point events around them), so most items skip even the cache's map
// lookup. It remembers up to memoSlots keys, a key in the slot its name's
// length and its End pick. A Memo belongs to one goroutine (one batch).
type Memo struct {
	ix    *Index
	slots [memoSlots]memoSlot
}

const memoSlots = 8

type memoSlot struct {
	key event.Key // End is unprimed until the slot is first used
	sel *Selection
}

// unprimed is an End no key has, so a fresh slot misses.
const unprimed event.End = 0xff

// Memo returns a fresh Memo of ix (a zero Memo is not one).
func (ix *Index) Memo() Memo {
	m := Memo{ix: ix}
	for i := range m.slots {
		m.slots[i].key.End = unprimed
	}
	return m
}

// Select is Index.Select, remembering the answer. The result is shared (the
// Index's cached selection): callers must not modify it.
func (m *Memo) Select(k event.Key) *Selection {
	sl := &m.slots[(len(k.Name)+int(k.End))&(memoSlots-1)]
	if k.End != sl.key.End || k.Name != sl.key.Name {
		m.miss(sl, k)
	}
	return sl.sel
}

// miss is kept out of Select so that Select inlines into per-item loops.
//
//go:noinline
func (m *Memo) miss(sl *memoSlot, k event.Key) {
	sl.sel = m.ix.lookup(k)
	sl.key = k
}

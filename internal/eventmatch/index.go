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

	cache atomic.Pointer[map[event.Key]Selection]
	mu    sync.Mutex // serialises cache writers
}

// NewIndex indexes the matchers of a component's rules, in order (nil
// matches nothing); a Selection names them by index.
func NewIndex(matchers []*Matcher) *Index {
	ix := &Index{matchers: matchers}
	empty := map[event.Key]Selection{}
	ix.cache.Store(&empty)
	return ix
}

// Select returns the selection of an item with key k.
func (ix *Index) Select(k event.Key) Selection {
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
	next := make(map[event.Key]Selection, len(m)+1)
	for key, v := range m {
		next[key] = v
	}
	next[k] = s
	ix.cache.Store(&next)
	return s
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

// Memo is an Index seen through the last key it was asked for: the items of a
// batch come in runs of the same few events, so most items skip even the
// cache's map lookup. A Memo belongs to one goroutine (one batch).
type Memo struct {
	ix  *Index
	key event.Key // the last key; End is unprimed until the first Select
	sel Selection
}

// unprimed is an End no key has, so a fresh Memo misses.
const unprimed event.End = 0xff

// Memo returns a fresh Memo of ix (a zero Memo is not one).
func (ix *Index) Memo() Memo { return Memo{ix: ix, key: event.Key{End: unprimed}} }

// Select is Index.Select, remembering the last answer. The result is the
// Memo's own, valid until the next Select.
func (m *Memo) Select(k event.Key) *Selection {
	if k.End != m.key.End || k.Name != m.key.Name {
		m.miss(k)
	}
	return &m.sel
}

// miss is kept out of Select so that Select inlines into per-item loops.
//
//go:noinline
func (m *Memo) miss(k event.Key) {
	m.sel = m.ix.Select(k)
	m.key = k
}

package aitraceexporter // import "github.com/anvil/anvilcol/exporter/aitraceexporter"

import "sync"

// recentSet remembers the last capacity export ids registered, forgetting
// the oldest first, and the ids being registered right now. One export is
// usually reported by two events close together (anvil.export.generate.stop,
// then anvil.export.completed), possibly exported concurrently by different
// queue consumers; claiming an id before sending it keeps the second event
// from registering the export again. The server's Idempotency-Key covers what
// the set has forgotten or never saw (a restart).
type recentSet struct {
	mu       sync.Mutex
	done     map[string]struct{}
	inFlight map[string]struct{}
	ring     []string
	next     int
}

func newRecentSet(capacity int) *recentSet {
	return &recentSet{
		done:     make(map[string]struct{}, capacity),
		inFlight: map[string]struct{}{},
		ring:     make([]string, capacity),
	}
}

// claim reports whether the caller should register id: false when it was
// registered recently or another caller is registering it now. A true claim
// must be ended with release.
func (s *recentSet) claim(id string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.done[id]; ok {
		return false
	}
	if _, ok := s.inFlight[id]; ok {
		return false
	}
	s.inFlight[id] = struct{}{}
	return true
}

// release ends a claim; registered records the id as registered.
func (s *recentSet) release(id string, registered bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.inFlight, id)
	if !registered {
		return
	}
	if _, ok := s.done[id]; ok {
		return
	}
	if old := s.ring[s.next]; old != "" {
		delete(s.done, old)
	}
	s.ring[s.next] = id
	s.done[id] = struct{}{}
	s.next = (s.next + 1) % len(s.ring)
}

// Package eventmatch matches Anvil event names against the patterns users write
// in sampling, alert and exporter configs. A pattern is a dotted event name in
// which `*` matches any run of characters, dots included:
// "anvil.label.submit.*", "*.exception", "anvil.*.stop".
//
// An Index selects the rules of a component for an item (a log record or a
// span, by its event.Key) and caches the answer per name; every component
// selects events through it, so a pattern selects the same items everywhere.
package eventmatch // import "github.com/anvil/anvilcol/internal/eventmatch"

import (
	"errors"
	"fmt"
	"strings"
)

// ErrMalformedPattern is returned (wrapped) for a pattern that cannot match any
// event name the way its author meant.
var ErrMalformedPattern = errors.New("malformed event pattern")

// Validate checks one pattern: non-empty, no whitespace or control characters,
// no empty dot-separated segment ("a..b", ".a", "a.").
func Validate(p string) error {
	if p == "" {
		return fmt.Errorf("%w: empty", ErrMalformedPattern)
	}
	for i := 0; i < len(p); i++ {
		c := p[i]
		if c <= ' ' || c == 0x7f {
			return fmt.Errorf("%w: %q contains whitespace or a control character", ErrMalformedPattern, p)
		}
	}
	for _, seg := range strings.Split(p, ".") {
		if seg == "" {
			return fmt.Errorf("%w: %q has an empty segment (leading, trailing or doubled dot)", ErrMalformedPattern, p)
		}
	}
	return nil
}

// Matcher matches a name against a set of patterns. Literal patterns are looked
// up in a map; glob patterns are tried in order. A Matcher is immutable and safe
// for concurrent use.
type Matcher struct {
	exact map[string]struct{}
	globs []string
}

// New compiles patterns into a Matcher. The error names the offending pattern
// by index so callers can prefix the config key: `rules[1].events[2]: ...`.
func New(patterns []string) (*Matcher, error) {
	m := &Matcher{exact: make(map[string]struct{}, len(patterns))}
	for i, p := range patterns {
		if err := Validate(p); err != nil {
			return nil, fmt.Errorf("[%d]: %w", i, err)
		}
		if strings.IndexByte(p, '*') < 0 {
			m.exact[p] = struct{}{}
			continue
		}
		m.globs = append(m.globs, p)
	}
	return m, nil
}

// Match reports whether name matches any pattern. It does not allocate.
func (m *Matcher) Match(name string) bool {
	if m == nil {
		return false
	}
	if _, ok := m.exact[name]; ok {
		return true
	}
	for _, g := range m.globs {
		if Glob(g, name) {
			return true
		}
	}
	return false
}

// Empty reports whether the matcher has no patterns.
func (m *Matcher) Empty() bool { return m == nil || (len(m.exact) == 0 && len(m.globs) == 0) }

// Glob reports whether name matches pattern, where `*` matches any run of
// characters (dots included) and every other byte matches itself. Linear-time
// greedy matching with backtracking to the last star; no allocation.
func Glob(pattern, name string) bool {
	p, n := 0, 0
	star, mark := -1, 0
	for n < len(name) {
		switch {
		case p < len(pattern) && pattern[p] == '*':
			star, mark = p, n
			p++
		case p < len(pattern) && pattern[p] == name[n]:
			p++
			n++
		case star >= 0:
			p = star + 1
			mark++
			n = mark
		default:
			return false
		}
	}
	for p < len(pattern) && pattern[p] == '*' {
		p++
	}
	return p == len(pattern)
}

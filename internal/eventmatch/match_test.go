package eventmatch

import (
	"errors"
	"testing"
)

func TestGlobMatchesAnyRunIncludingDots(t *testing.T) {
	tests := []struct {
		pattern, name string
		want          bool
	}{
		{"anvil.label.submit.stop", "anvil.label.submit.stop", true},
		{"anvil.label.submit.stop", "anvil.label.submit.start", false},
		{"anvil.label.submit.*", "anvil.label.submit.stop", true},
		{"anvil.label.submit.*", "anvil.label.submit", false},
		{"*.exception", "anvil.export.generate.exception", true},
		{"*.exception", "exception", false},
		{"anvil.*.stop", "anvil.label.submit.stop", true},
		{"anvil.*.stop", "anvil.label.submit.start", false},
		{"*", "anything.at.all", true},
		{"*", "", true},
		{"a*b*c", "axxbyyc", true},
		{"a*b*c", "axxbyy", false},
		{"anvil.assignment.*", "anvil.assignment.dispatch.stop", true},
		{"**.stop", "x.stop", true},
	}
	for _, tt := range tests {
		if got := Glob(tt.pattern, tt.name); got != tt.want {
			t.Errorf("Glob(%q, %q) = %v, want %v", tt.pattern, tt.name, got, tt.want)
		}
	}
}

func TestMatcherExactAndGlob(t *testing.T) {
	m := mustNew(t, "anvil.agreement.low_score", "*.exception")
	for name, want := range map[string]bool{
		"anvil.agreement.low_score":    true,
		"anvil.agreement.low_score.x":  false,
		"anvil.label.submit.exception": true,
		"anvil.label.submit.stop":      false,
		"":                             false,
	} {
		if got := m.Match(name); got != want {
			t.Errorf("Match(%q) = %v, want %v", name, got, want)
		}
	}
	var nilM *Matcher
	if nilM.Match("x") || !nilM.Empty() {
		t.Error("nil matcher must match nothing and be empty")
	}
}

func TestMalformedPatternsAreRejectedWithIndex(t *testing.T) {
	for _, p := range []string{"", "a..b", ".a", "a.", "a b", "a\tb"} {
		_, err := New([]string{"ok.name", p})
		if !errors.Is(err, ErrMalformedPattern) {
			t.Errorf("New(%q) err = %v, want ErrMalformedPattern", p, err)
			continue
		}
		if got := err.Error(); got[:3] != "[1]" {
			t.Errorf("error %q does not name index [1]", got)
		}
	}
}

func BenchmarkMatcher(b *testing.B) {
	m := mustNew(b, "anvil.agreement.low_score", "anvil.auth.access_denied", "*.exception", "anvil.label.submit.*")
	names := []string{"anvil.label.submit.stop", "anvil.queue.created", "anvil.export.generate.exception"}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		m.Match(names[i%len(names)])
	}
}

func mustNew(t testing.TB, patterns ...string) *Matcher {
	t.Helper()
	m, err := New(patterns)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

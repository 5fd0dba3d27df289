package event

import (
	"testing"

	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/ptrace"
)

func TestSplitLifecycle(t *testing.T) {
	tests := []struct {
		name, prefix string
		lc           Lifecycle
	}{
		{"anvil.label.submit.stop", "anvil.label.submit", Stop},
		{"anvil.label.submit.start", "anvil.label.submit", Start},
		{"anvil.export.generate.exception", "anvil.export.generate", Exception},
		{"anvil.queue.created", "anvil.queue.created", Point},
		{"stop", "stop", Point},
	}
	for _, tt := range tests {
		p, lc := Split(tt.name)
		if p != tt.prefix || lc != tt.lc {
			t.Errorf("Split(%q) = %q,%v want %q,%v", tt.name, p, lc, tt.prefix, tt.lc)
		}
	}
	if !IsException("a.b.exception") || IsException("a.b.stop") {
		t.Error("IsException")
	}
}

func TestLogNameFallsBackToAttribute(t *testing.T) {
	lr := plog.NewLogRecord()
	if LogName(lr) != "" {
		t.Fatal("empty record must have no name")
	}
	lr.Attributes().PutStr(AttrEventName, "anvil.auth.access_denied")
	if got := LogName(lr); got != "anvil.auth.access_denied" {
		t.Fatalf("attribute fallback: %q", got)
	}
	lr.SetEventName("anvil.label.submit.stop")
	if got := LogName(lr); got != "anvil.label.submit.stop" {
		t.Fatalf("EventName wins: %q", got)
	}
}

func TestSpanIsTheEventThatEndedIt(t *testing.T) {
	s := ptrace.NewSpan()
	s.SetName("anvil.export.generate")
	k := SpanKey(s)
	if k.Event() != "anvil.export.generate.stop" {
		t.Errorf("ok span: %q", k.Event())
	}
	s.Status().SetCode(ptrace.StatusCodeError)
	k = SpanKey(s)
	if k.Event() != "anvil.export.generate.exception" {
		t.Errorf("error span: %q", k.Event())
	}
	if n := k.Names(); len(n) != 2 || n[0] != "anvil.export.generate" || n[1] != "anvil.export.generate.exception" {
		t.Errorf("span names: %q", n)
	}
	lr := plog.NewLogRecord()
	lr.SetEventName("anvil.export.generate.exception")
	if k := LogKey(lr); k.Event() != "anvil.export.generate.exception" || len(k.Names()) != 1 {
		t.Errorf("log key: %+v", k)
	}
}

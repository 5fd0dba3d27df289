package notify // import "github.com/anvil/anvilcol/processor/alertprocessor/internal/notify"

import (
	"fmt"
	"time"
)

// Status of a notification.
const (
	StatusFiring   = "firing"
	StatusResolved = "resolved"
)

// Notification is one alert event handed to the notifiers.
type Notification struct {
	Rule      string
	Status    string // StatusFiring or StatusResolved
	Repeat    bool   // a re-notification of a still-firing alert (repeat_interval)
	Refresh   bool   // a keep-alive of a firing alert: only notifiers with a resend interval (alertmanager) take it
	Severity  Severity
	Summary   string
	Value     float64 // compared with Threshold: the statistic, or a baseline rule's comparison of Current with Baseline
	Compare   string  // baseline rules: "ratio" (Value = Current / Baseline) or "difference" (Current − Baseline); "" otherwise
	Current   float64 // baseline rules: the window's statistic
	Baseline  float64 // baseline rules: the baseline's statistic (NaN: none)
	Threshold float64
	Op        string
	Stat      string
	Labels    map[string]string // the group_by labels of this alert
	DedupKey  string            // stable per (rule, group), across restarts
	StartsAt  time.Time
	EndsAt    time.Time // zero while firing
	At        time.Time
}

// Severity orders alerts; a notifier's min_severity filters on it. The zero
// value is "not set" (the config's default applies).
type Severity int8

// The severities, lowest first.
const (
	SeverityInfo Severity = iota + 1
	SeverityWarning
	SeverityError
	SeverityCritical
)

var severityNames = [...]string{SeverityInfo: "info", SeverityWarning: "warning", SeverityError: "error", SeverityCritical: "critical"}

// ParseSeverity maps a severity name; "" is the zero Severity (not set).
func ParseSeverity(s string) (Severity, error) {
	if s == "" {
		return 0, nil
	}
	for v, name := range severityNames {
		if name == s && v > 0 {
			return Severity(v), nil
		}
	}
	return 0, fmt.Errorf("unknown severity %q; use one of critical error warning info", s)
}

// String is the severity's name, "" when not set.
func (s Severity) String() string {
	if s <= 0 || int(s) >= len(severityNames) {
		return ""
	}
	return severityNames[s]
}

// MarshalText writes the name.
func (s Severity) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// UnmarshalText reads a name (confmap calls it for the config keys of this type).
func (s *Severity) UnmarshalText(b []byte) error {
	v, err := ParseSeverity(string(b))
	if err != nil {
		return err
	}
	*s = v
	return nil
}

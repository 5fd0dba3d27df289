package samplingprocessor // import "github.com/anvil/anvilcol/processor/samplingprocessor"

import (
	"errors"
	"fmt"
	"math"

	"github.com/open-telemetry/opentelemetry-collector-contrib/pkg/sampling"
	"go.opentelemetry.io/collector/component"

	"github.com/anvil/anvilcol/internal/eventmatch"
)

// DefaultRuleName is the `rule` attribute of the processor's own metrics for
// items that match no rule (and are sampled at default_rate). It is reserved:
// no configured rule may use it.
const DefaultRuleName = "default"

// Config configures the `sampling` processor.
type Config struct {
	// DefaultRate is the probability, in [0, 1], with which items that match
	// no rule are kept. Default 1.0 (keep everything no rule names).
	DefaultRate float64 `mapstructure:"default_rate"`

	// HashAttribute names the attribute whose value decides items that carry
	// no trace id (log records outside a trace), so all records with the same
	// value share one decision. Items with neither a trace id nor this
	// attribute are decided at random. Default "" (random).
	HashAttribute string `mapstructure:"hash_attribute"`

	// SamplingPrecision is the number of hexadecimal digits, 1 to 14, of the
	// sampling threshold written to `ot=th:` and `sampling.threshold`; a rate
	// is rounded to this precision before it is applied. Default 14 (exact:
	// `sampling.adjusted_count` is then 1/rate).
	SamplingPrecision int `mapstructure:"sampling_precision"`

	// Rules are tried in order; the first rule whose events and attributes
	// match an item decides it. Default: none (every item at default_rate).
	Rules []RuleConfig `mapstructure:"rules"`

	// prevent unkeyed literal initialization
	_ struct{}
}

// RuleConfig is one sampling rule.
type RuleConfig struct {
	// Name identifies the rule in the processor's own metrics (`rule`
	// attribute). Required, unique, not "default".
	Name string `mapstructure:"name"`

	// Events are event-name patterns (internal/eventmatch: `*` matches any
	// run of characters, dots included) matched against a log record's
	// EventName (else its `event.name` attribute) and a span's name.
	// Required, at least one.
	Events []string `mapstructure:"events"`

	// Attributes must all be present on the item (log record or span
	// attributes) with exactly these values (compared as strings; ints, bools
	// and doubles are compared by value). Default: none (events alone decide).
	Attributes map[string]string `mapstructure:"attributes"`

	// Rate is the probability, in [0, 1], with which a matching item is kept.
	// Default 1.0 when omitted (keep all; useful with max_per_second).
	Rate *float64 `mapstructure:"rate"`

	// MaxPerSecond caps the items this rule keeps per second, after the rate
	// (a token bucket holding up to max(1, max_per_second) tokens). Items the
	// cap drops are counted with reason `rate_limit`; items it lets pass are
	// marked `sampling.capped`. Default 0 (no cap).
	MaxPerSecond float64 `mapstructure:"max_per_second"`
}

var _ component.Config = (*Config)(nil)

// ErrInvalidConfig is wrapped by every error Validate returns.
var ErrInvalidConfig = errors.New("invalid sampling config")

// rate returns the rule's rate, 1.0 when omitted.
func (r *RuleConfig) rate() float64 {
	if r.Rate == nil {
		return 1
	}
	return *r.Rate
}

// Validate reports every problem in the config, each naming its key.
func (cfg *Config) Validate() error {
	var errs []error
	bad := func(key, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%w: `%s` %s", ErrInvalidConfig, key, fmt.Sprintf(format, args...)))
	}
	if err := checkRate(cfg.DefaultRate); err != nil {
		bad("default_rate", "%v", err)
	}
	if cfg.SamplingPrecision < 1 || cfg.SamplingPrecision > sampling.NumHexDigits {
		bad("sampling_precision", "must be within [1, %d], got %d", sampling.NumHexDigits, cfg.SamplingPrecision)
	}
	seen := make(map[string]int, len(cfg.Rules))
	for i := range cfg.Rules {
		r := &cfg.Rules[i]
		key := fmt.Sprintf("rules[%d]", i)
		switch {
		case r.Name == "":
			bad(key+".name", "is required")
		case r.Name == DefaultRuleName:
			bad(key+".name", "%q is reserved for items that match no rule; choose another name", DefaultRuleName)
		default:
			if j, dup := seen[r.Name]; dup {
				bad(key+".name", "%q duplicates rules[%d].name; rule names must be unique", r.Name, j)
			} else {
				seen[r.Name] = i
			}
		}
		if len(r.Events) == 0 {
			bad(key+".events", "must list at least one event pattern")
		}
		for j, p := range r.Events {
			if err := eventmatch.Validate(p); err != nil {
				errs = append(errs, fmt.Errorf("%w: `%s.events[%d]`: %w", ErrInvalidConfig, key, j, err))
			}
		}
		for k := range r.Attributes {
			if k == "" {
				bad(key+".attributes", "has an empty attribute name")
			}
		}
		if err := checkRate(r.rate()); err != nil {
			bad(key+".rate", "%v", err)
		}
		if math.IsNaN(r.MaxPerSecond) || math.IsInf(r.MaxPerSecond, 0) || r.MaxPerSecond < 0 {
			bad(key+".max_per_second", "must be a finite number >= 0 (0 = no cap), got %v", r.MaxPerSecond)
		}
	}
	return errors.Join(errs...)
}

func checkRate(r float64) error {
	switch {
	case math.IsNaN(r) || r < 0 || r > 1:
		return fmt.Errorf("must be within [0, 1], got %v", r)
	case r != 0 && r < sampling.MinSamplingProbability:
		return fmt.Errorf("must be 0 or at least 2^-56 (the finest OpenTelemetry sampling probability), got %v", r)
	}
	return nil
}

package cardinalityguardprocessor // import "github.com/anvil/anvilcol/processor/cardinalityguardprocessor"

import (
	"errors"
	"fmt"
	"sort"
	"time"

	"go.opentelemetry.io/collector/component"
)

// OverflowAttribute is the only attribute of a metric's overflow series (the
// OpenTelemetry SDK's cardinality-limit convention).
const OverflowAttribute = "otel.metric.overflow"

// Config is the configuration of the cardinality_guard processor.
type Config struct {
	// DropAttributes are the data point attribute keys removed from every metric
	// that has no allowlist override. Default: [labeler_id, sample_id,
	// assignment_id] (the high-cardinality class of ADR-008). An explicit empty
	// list drops nothing.
	DropAttributes []string `mapstructure:"drop_attributes"`

	// MaxSeriesPerMetric caps the output series of each metric (per resource and
	// scope); series beyond it fold into one overflow series. Default: 2000 (the
	// OpenTelemetry SDK's default cardinality limit). 0 means no cap.
	MaxSeriesPerMetric int `mapstructure:"max_series_per_metric"`

	// SeriesTTL is how long an output series (and the state of the input series
	// that fold into it) is kept without a new point; then its slot is freed.
	// Default: 1h. Must be at least 1s.
	SeriesTTL time.Duration `mapstructure:"series_ttl"`

	// Metrics are per-metric overrides keyed by metric name. Default: none.
	Metrics map[string]MetricConfig `mapstructure:"metrics"`

	// prevent unkeyed literal initialization
	_ struct{}
}

// MetricConfig overrides the guard for one metric.
type MetricConfig struct {
	// AllowedAttributes, when set, is an allowlist: every data point attribute
	// not in it is dropped, and drop_attributes does not apply to this metric
	// (the more specific setting wins: an attribute may be in both, it is then
	// kept for this metric only). Default: unset (drop_attributes applies).
	AllowedAttributes []string `mapstructure:"allowed_attributes"`

	// MaxSeries overrides max_series_per_metric for this metric. Default: unset
	// (max_series_per_metric applies); 0 means no cap.
	MaxSeries *int `mapstructure:"max_series"`

	// prevent unkeyed literal initialization
	_ struct{}
}

var _ component.Config = (*Config)(nil)

// Errors returned by Validate; the returned error wraps one of these and names
// the offending key.
var (
	ErrNegativeCap  = errors.New("must not be negative")
	ErrEmptyName    = errors.New("must not be empty")
	ErrDuplicate    = errors.New("is listed twice")
	ErrTTLTooShort  = errors.New("must be at least 1s")
	ErrReservedName = errors.New("is reserved for the overflow series")
)

// Validate checks the configuration; every error names the key to fix.
func (cfg *Config) Validate() error {
	var errs []error
	if cfg.MaxSeriesPerMetric < 0 {
		errs = append(errs, fmt.Errorf("max_series_per_metric (%d) %w", cfg.MaxSeriesPerMetric, ErrNegativeCap))
	}
	if cfg.SeriesTTL < time.Second {
		errs = append(errs, fmt.Errorf("series_ttl (%s) %w", cfg.SeriesTTL, ErrTTLTooShort))
	}
	dropped := make(map[string]bool, len(cfg.DropAttributes))
	for i, k := range cfg.DropAttributes {
		errs = append(errs, checkName(fmt.Sprintf("drop_attributes[%d]", i), k, dropped)...)
		dropped[k] = true
	}
	names := make([]string, 0, len(cfg.Metrics))
	for name := range cfg.Metrics {
		names = append(names, name)
	}
	sort.Strings(names) // deterministic error order
	for _, name := range names {
		mc := cfg.Metrics[name]
		key := fmt.Sprintf("metrics::%s", name)
		if name == "" {
			errs = append(errs, fmt.Errorf("metrics: a metric name %w", ErrEmptyName))
		}
		if mc.MaxSeries != nil && *mc.MaxSeries < 0 {
			errs = append(errs, fmt.Errorf("%s::max_series (%d) %w", key, *mc.MaxSeries, ErrNegativeCap))
		}
		allowed := make(map[string]bool, len(mc.AllowedAttributes))
		for i, k := range mc.AllowedAttributes {
			akey := fmt.Sprintf("%s::allowed_attributes[%d]", key, i)
			errs = append(errs, checkName(akey, k, allowed)...)
			allowed[k] = true
		}
	}
	return errors.Join(errs...)
}

func checkName(key, name string, seen map[string]bool) []error {
	switch {
	case name == "":
		return []error{fmt.Errorf("%s: attribute name %w", key, ErrEmptyName)}
	case name == OverflowAttribute:
		return []error{fmt.Errorf("%s: %q %w", key, name, ErrReservedName)}
	case seen[name]:
		return []error{fmt.Errorf("%s: %q %w", key, name, ErrDuplicate)}
	}
	return nil
}

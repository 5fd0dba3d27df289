package anvilreceiver // import "github.com/anvil/anvilcol/receiver/anvilreceiver"

import (
	"errors"
	"fmt"
	"math"
	"strings"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/config/confighttp"
	"go.opentelemetry.io/collector/pdata/pcommon"

	"github.com/anvil/anvilcol/internal/timeunit"
)

// MetricType is a metric definition's `type`, as in Elixir's
// Telemetry.Metrics. The config decoder calls UnmarshalText, so the name is
// parsed once, when the config is read, and an unknown one fails naming its
// key (the decoder prefixes it, e.g. `'metrics[0].type' unknown type
// "histogram"; use one of counter sum last_value summary distribution`).
type MetricType int

// The metric types; TypeUnset is a definition without `type` (invalid:
// Validate requires it).
const (
	TypeUnset MetricType = iota
	TypeCounter
	TypeSum
	TypeLastValue
	TypeSummary
	TypeDistribution
)

var metricTypeNames = []string{
	TypeUnset: "", TypeCounter: "counter", TypeSum: "sum", TypeLastValue: "last_value",
	TypeSummary: "summary", TypeDistribution: "distribution",
}

func (t MetricType) String() string {
	if t >= 0 && int(t) < len(metricTypeNames) {
		return metricTypeNames[t]
	}
	return fmt.Sprintf("MetricType(%d)", int(t))
}

// MarshalText returns the type's name ("" for TypeUnset).
func (t MetricType) MarshalText() ([]byte, error) {
	if t < 0 || int(t) >= len(metricTypeNames) {
		return nil, fmt.Errorf("invalid metric type %d", int(t))
	}
	return []byte(metricTypeNames[t]), nil
}

// UnmarshalText accepts a type name; "" is TypeUnset, which Validate rejects
// as missing.
func (t *MetricType) UnmarshalText(b []byte) error {
	v, err := parseMetricType(string(b))
	if err != nil {
		return err
	}
	*t = v
	return nil
}

func parseMetricType(s string) (MetricType, error) {
	for i, n := range metricTypeNames {
		if n == s {
			return MetricType(i), nil
		}
	}
	return TypeUnset, fmt.Errorf("unknown type %q; use one of %s", s, strings.Join(metricTypeNames[1:], " "))
}

// Histogram kinds of a distribution.
const (
	HistogramExplicit    = "explicit"
	HistogramExponential = "exponential"
)

// Temporalities of the aggregated counters, sums, summaries and distributions.
const (
	TemporalityCumulative = "cumulative"
	TemporalityDelta      = "delta"
)

// Defaults.
const (
	defaultEndpoint             = "localhost:4320"
	defaultMaxEventsPerRequest  = 10000
	defaultFlushInterval        = 10 * time.Second
	defaultSeriesTTL            = time.Hour
	defaultMaxSeriesPerMetric   = 10000
	defaultExponentialMaxSize   = 160
	defaultSummaryMaxSamples    = 10000
	defaultNativeTimeUnit       = "nanosecond"
	defaultServiceName          = "anvil"
	minExponentialHistogramSize = 2
)

// defaultBuckets are the OpenTelemetry SDK's default explicit bucket bounds,
// used by a distribution that sets neither `buckets` nor `histogram: exponential`.
var defaultBuckets = []float64{0, 5, 10, 25, 50, 75, 100, 250, 500, 750, 1000, 2500, 5000, 7500, 10000}

// defaultQuantiles are a summary's quantiles when it sets none.
var defaultQuantiles = []float64{0.5, 0.9, 0.95, 0.99}

// Config is the anvil receiver's configuration.
type Config struct {
	// ServerConfig is the HTTP server: endpoint (default localhost:4320), tls,
	// auth, cors, max_request_body_size (default 20 MiB), compression_algorithms
	// (default: gzip, zstd, zlib, snappy, deflate and none), timeouts.
	ServerConfig confighttp.ServerConfig `mapstructure:",squash"`

	// NativeTimeUnit is the unit of duration measurements whose event says
	// `time_unit: native` or nothing: the BEAM's native unit as configured on
	// the Anvil nodes. Default "nanosecond".
	NativeTimeUnit string `mapstructure:"native_time_unit"`

	// MaxEventsPerRequest bounds the events of one request; a request with more
	// is answered 413. Default 10000.
	MaxEventsPerRequest int `mapstructure:"max_events_per_request"`

	// Resource holds resource attributes added to everything the receiver
	// emits; a request's own `resource` object overrides them key by key.
	// `service.name` defaults to "anvil". Default: empty.
	Resource map[string]any `mapstructure:"resource"`

	// DefaultMetrics loads the built-in metric catalog (ADR-008). Default true.
	DefaultMetrics bool `mapstructure:"default_metrics"`

	// Metrics are metric definitions added to the catalog (or replacing it when
	// default_metrics is false); a definition with a catalog name overrides the
	// catalog's. Default: none.
	Metrics []MetricConfig `mapstructure:"metrics"`

	// MetricsFlushInterval is how often the aggregated metrics are sent on
	// (they are also sent at shutdown). Default 10s.
	MetricsFlushInterval time.Duration `mapstructure:"metrics_flush_interval"`

	// Temporality of counters, sums, summaries' count/sum and distributions:
	// "cumulative" or "delta". Default "cumulative".
	Temporality string `mapstructure:"temporality"`

	// SeriesTTL forgets a series (one metric + tag values) unseen for this long;
	// 0 keeps series until max_series_per_metric is reached. Default 1h.
	SeriesTTL time.Duration `mapstructure:"series_ttl"`

	// MaxSeriesPerMetric bounds the series of one metric; measurements of further
	// series fold into one series with the attribute otel.metric.overflow=true
	// and are counted. Default 10000.
	MaxSeriesPerMetric int `mapstructure:"max_series_per_metric"`

	// prevent unkeyed literal initialization
	_ struct{}
}

// MetricConfig is one metric definition, the collector-side equivalent of a
// Telemetry.Metrics definition.
type MetricConfig struct {
	// Name of the metric, e.g. anvil.assignment.dispatch.duration. Required.
	Name string `mapstructure:"name"`

	// Type is counter, sum, last_value, summary or distribution. Required.
	Type MetricType `mapstructure:"type"`

	// Event is the dotted event name the metric reads. Default: the metric
	// name without its last segment (Telemetry.Metrics' convention).
	Event string `mapstructure:"event"`

	// Measurement is the measurement read from the event, falling back to a
	// numeric metadata key of that name; counters ignore it. Default: the
	// metric name's last segment.
	Measurement string `mapstructure:"measurement"`

	// Unit of the metric. A time unit (ns, us, ms, s) converts the measurement
	// from the event's time unit; any other unit is only a label. Default "".
	Unit string `mapstructure:"unit"`

	// Description of the metric. Default "".
	Description string `mapstructure:"description"`

	// Tags are the metadata keys that become attributes. Default: none.
	Tags []string `mapstructure:"tags"`

	// Buckets are a distribution's explicit bucket upper bounds, strictly
	// increasing. Default: the OpenTelemetry SDK defaults
	// [0, 5, 10, 25, 50, 75, 100, 250, 500, 750, 1000, 2500, 5000, 7500, 10000].
	Buckets []float64 `mapstructure:"buckets"`

	// Histogram is a distribution's kind: "explicit" or "exponential".
	// Default "explicit".
	Histogram string `mapstructure:"histogram"`

	// MaxSize is the maximum number of buckets of an exponential histogram
	// (per sign). Default 160.
	MaxSize int `mapstructure:"max_size"`

	// Quantiles of a summary, each within [0, 1], computed over each flush
	// interval. Default [0.5, 0.9, 0.95, 0.99].
	Quantiles []float64 `mapstructure:"quantiles"`

	// Monotonic marks a sum whose measurement is never negative, so that
	// backends treat it as a counter. Default false.
	Monotonic bool `mapstructure:"monotonic"`

	// prevent unkeyed literal initialization
	_ struct{}
}

var _ component.Config = (*Config)(nil)

// ErrInvalidMetric is wrapped by every error about a metric definition.
var ErrInvalidMetric = errors.New("invalid metric definition")

// Validate checks the configuration; errors name the key.
func (cfg *Config) Validate() error {
	var errs []error
	if u, err := timeunit.Parse(cfg.NativeTimeUnit); err != nil {
		errs = append(errs, fmt.Errorf("native_time_unit: %w", err))
	} else if u == timeunit.Native {
		errs = append(errs, errors.New("native_time_unit must name a unit (nanosecond, microsecond, millisecond or second), not native"))
	}
	if cfg.MaxEventsPerRequest <= 0 {
		errs = append(errs, fmt.Errorf("max_events_per_request must be positive, got %d", cfg.MaxEventsPerRequest))
	}
	if cfg.MetricsFlushInterval <= 0 {
		errs = append(errs, fmt.Errorf("metrics_flush_interval must be positive, got %v", cfg.MetricsFlushInterval))
	}
	if cfg.Temporality != TemporalityCumulative && cfg.Temporality != TemporalityDelta {
		errs = append(errs, fmt.Errorf("temporality must be %q or %q, got %q", TemporalityCumulative, TemporalityDelta, cfg.Temporality))
	}
	if cfg.SeriesTTL < 0 {
		errs = append(errs, fmt.Errorf("series_ttl must not be negative, got %v", cfg.SeriesTTL))
	}
	if cfg.MaxSeriesPerMetric <= 0 {
		errs = append(errs, fmt.Errorf("max_series_per_metric must be positive, got %d", cfg.MaxSeriesPerMetric))
	}
	if err := pcommon.NewMap().FromRaw(cfg.Resource); err != nil {
		errs = append(errs, fmt.Errorf("resource: %w", err))
	}
	if cfg.DefaultMetrics {
		if _, err := loadCatalog(); err != nil {
			errs = append(errs, fmt.Errorf("default_metrics: the built-in catalog: %w", err))
		}
	}
	seen := make(map[string]int, len(cfg.Metrics))
	for i := range cfg.Metrics {
		m := &cfg.Metrics[i]
		if j, dup := seen[m.Name]; dup && m.Name != "" {
			errs = append(errs, fmt.Errorf("%w: metrics[%d].name %q duplicates metrics[%d]", ErrInvalidMetric, i, m.Name, j))
			continue
		}
		seen[m.Name] = i
		if err := m.validate(); err != nil {
			errs = append(errs, fmt.Errorf("%w: metrics[%d]%w", ErrInvalidMetric, i, err))
		}
	}
	return errors.Join(errs...)
}

// keyError is an error about one key of a metric definition; its text starts
// with ".key" so that the caller can prefix "metrics[i]".
type keyError struct {
	key string
	msg string
}

func (e *keyError) Error() string { return "." + e.key + " " + e.msg }

func kerr(key, format string, args ...any) error {
	return &keyError{key: key, msg: fmt.Sprintf(format, args...)}
}

func (m *MetricConfig) validate() error {
	if m.Name == "" {
		return kerr("name", "is required")
	}
	switch m.Type {
	case TypeCounter, TypeSum, TypeLastValue, TypeSummary, TypeDistribution:
	case TypeUnset:
		return kerr("type", "is required (counter, sum, last_value, summary or distribution)")
	default: // only a MetricConfig built in code can hold one
		return kerr("type", "%v is unknown (want counter, sum, last_value, summary or distribution)", m.Type)
	}
	if ev := m.event(); ev == "" || strings.HasPrefix(ev, ".") || strings.HasSuffix(ev, ".") || strings.Contains(ev, "..") {
		if m.Event == "" {
			return kerr("event", "is required: the metric name %q has no event prefix", m.Name)
		}
		return kerr("event", "%q is not a dotted event name", m.Event)
	}
	if m.Type != TypeCounter && m.measurement() == "" {
		return kerr("measurement", "is required")
	}
	if m.Type != TypeDistribution && (len(m.Buckets) > 0 || m.Histogram != "") {
		return kerr("buckets", "only applies to a distribution")
	}
	if m.Type != TypeSummary && len(m.Quantiles) > 0 {
		return kerr("quantiles", "only applies to a summary")
	}
	if m.Type != TypeSum && m.Monotonic {
		return kerr("monotonic", "only applies to a sum")
	}
	for i, t := range m.Tags {
		if t == "" {
			return kerr(fmt.Sprintf("tags[%d]", i), "must not be empty")
		}
		for j := range i {
			if m.Tags[j] == t {
				return kerr(fmt.Sprintf("tags[%d]", i), "%q is listed twice", t)
			}
		}
	}
	switch m.Histogram {
	case "", HistogramExplicit:
		for i, b := range m.Buckets {
			if math.IsNaN(b) || math.IsInf(b, 0) {
				return kerr("buckets", "[%d] must be finite", i)
			}
			if i > 0 && b <= m.Buckets[i-1] {
				return kerr("buckets", "must be strictly increasing (%v after %v)", b, m.Buckets[i-1])
			}
		}
	case HistogramExponential:
		if len(m.Buckets) > 0 {
			return kerr("buckets", "cannot be set with histogram: exponential")
		}
		if m.MaxSize != 0 && m.MaxSize < minExponentialHistogramSize {
			return kerr("max_size", "must be at least %d, got %d", minExponentialHistogramSize, m.MaxSize)
		}
	default:
		return kerr("histogram", "%q is unknown (want explicit or exponential)", m.Histogram)
	}
	if m.Histogram != HistogramExponential && m.MaxSize != 0 {
		return kerr("max_size", "only applies to histogram: exponential")
	}
	for i, q := range m.Quantiles {
		if !(q >= 0 && q <= 1) {
			return kerr("quantiles", "[%d] must be within [0, 1], got %v", i, q)
		}
		if i > 0 && q <= m.Quantiles[i-1] {
			return kerr("quantiles", "must be strictly increasing (%v after %v)", q, m.Quantiles[i-1])
		}
	}
	return nil
}

// event returns the event the metric reads: Event, or the metric name without
// its last segment.
func (m *MetricConfig) event() string {
	if m.Event != "" {
		return m.Event
	}
	if i := strings.LastIndexByte(m.Name, '.'); i > 0 {
		return m.Name[:i]
	}
	return ""
}

// measurement returns the measurement the metric reads: Measurement, or the
// metric name's last segment.
func (m *MetricConfig) measurement() string {
	if m.Measurement != "" {
		return m.Measurement
	}
	if i := strings.LastIndexByte(m.Name, '.'); i >= 0 {
		return m.Name[i+1:]
	}
	return m.Name
}

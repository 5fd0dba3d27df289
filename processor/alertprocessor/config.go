package alertprocessor // import "github.com/anvil/anvilcol/processor/alertprocessor"

import (
	"errors"
	"fmt"
	"regexp"
	"text/template"
	"time"

	"go.opentelemetry.io/collector/component"

	"github.com/anvil/anvilcol/internal/eventmatch"
	"github.com/anvil/anvilcol/processor/alertprocessor/internal/notify"
)

// Config is the configuration of the alert processor.
type Config struct {
	// EvaluationInterval is how often every rule is evaluated. Default 15s.
	EvaluationInterval time.Duration `mapstructure:"evaluation_interval"`
	// RepeatInterval re-sends a notification for an alert that is still firing
	// after this long. 0 disables repeats. Default 4h.
	RepeatInterval time.Duration `mapstructure:"repeat_interval"`
	// SendResolved sends a notification when a firing alert resolves. Default true.
	SendResolved bool `mapstructure:"send_resolved"`
	// MaxGroups bounds the distinct group_by value sets tracked per rule; the
	// observations of further groups are dropped and counted. Default 1000.
	MaxGroups int `mapstructure:"max_groups"`
	// Rules are the alerting rules. Default none (the processor only passes data on).
	Rules []RuleConfig `mapstructure:"rules"`
	// Notifiers receive the notifications of every rule. Default none (alerts
	// are then only visible in the processor's own telemetry).
	Notifiers []NotifierConfig `mapstructure:"notifiers"`
	// Storage names a storage extension (`file_storage`) that keeps the alert
	// state and the windows across restarts. Default none (state is in memory only).
	Storage *component.ID `mapstructure:"storage"`

	_ struct{}
}

// RuleConfig is one alerting rule: a metric rule (`metric`) or an event rule (`event`).
type RuleConfig struct {
	// Name identifies the rule (the alertname); unique, [a-z0-9_]+. Required.
	Name string `mapstructure:"name"`
	// Metric is the metric name (a glob with `*` is allowed) a metric rule reads.
	// Exactly one of metric and event is required.
	Metric string `mapstructure:"metric"`
	// Event is the event name glob an event rule reads (log record EventName or
	// `event.name` attribute, and span name). Exactly one of metric and event is required.
	Event string `mapstructure:"event"`
	// Field is the number an event rule reads: a measurement in the log body
	// map, else an attribute; for spans an attribute, or `duration` (ns).
	// Default "" (count the events).
	Field string `mapstructure:"field"`
	// Stat is the statistic over the window: p50 p90 p95 p99 p999 avg min max
	// sum count increase rate last. Default: `last` for metric rules; for event
	// rules, empty means every event's field is checked on its own.
	Stat Stat `mapstructure:"stat"`
	// Window is the sliding window the stat is computed over. Default 5m for
	// rules with a stat (or evaluation_interval if that is longer);
	// evaluation_interval for per-event checks.
	Window time.Duration `mapstructure:"window"`
	// Op compares the value with the threshold: > >= < <= == !=. Required.
	Op Op `mapstructure:"op"`
	// Threshold is compared with the value, in the metric's own unit. Default 0.
	Threshold float64 `mapstructure:"threshold"`
	// For is how long the condition must hold before the alert fires (the
	// alert is pending meanwhile). Default 0s.
	For time.Duration `mapstructure:"for"`
	// KeepFiringFor keeps an alert firing this long after its condition
	// stopped holding. Default 0s.
	KeepFiringFor time.Duration `mapstructure:"keep_firing_for"`
	// GroupBy lists the attributes (data point / log / span attribute, else
	// resource attribute) whose value set makes one alert. Default: one alert per rule.
	GroupBy []string `mapstructure:"group_by"`
	// Severity is critical, error, warning or info. Default warning.
	Severity Severity `mapstructure:"severity"`
	// Baseline makes the rule compare its statistic with the same statistic
	// over an earlier, longer window of the same group (README "Baseline
	// rules"). Default none: the statistic itself is compared with threshold.
	Baseline *BaselineConfig `mapstructure:"baseline"`
	// Compare is how a baseline rule sets its statistic against the
	// baseline's: ratio (value / baseline) or difference (value − baseline);
	// the result is compared with threshold. Only with baseline. Default ratio.
	Compare Compare `mapstructure:"compare"`
	// MinCount is the observations the window, and with a baseline the
	// baseline too, must each hold for a verdict (events; a histogram's or
	// summary's observations; gauge and sum data points); with fewer the
	// condition is false. Default 0.
	MinCount int `mapstructure:"min_count"`
	// Summary is a Go text/template with .Value, .Labels, .Rule, .Threshold,
	// .Op, .Severity and .Status, and for baseline rules .Current, .Baseline
	// and .Compare. Default DefaultSummary, DefaultBaselineSummary for
	// baseline rules.
	Summary string `mapstructure:"summary"`

	_ struct{}
}

// BaselineConfig is a rule's baseline: the statistic over the `window` that
// ended `offset` ago.
type BaselineConfig struct {
	// Window is the baseline's length; positive and not shorter than the
	// rule's window. Required.
	Window time.Duration `mapstructure:"window"`
	// Offset is how long before now the baseline ends; not negative. Default 0
	// (the baseline ends now and includes the rule's window).
	Offset time.Duration `mapstructure:"offset"`

	_ struct{}
}

// NotifierConfig is one notification target: `type`, the keys every
// notifier has, and the keys of its type (one sub-struct per type, written
// at the same level; internal/notify documents each).
type NotifierConfig = notify.Config

// NewNotifierConfig returns a notifier of type typ with every default set.
func NewNotifierConfig(typ string) NotifierConfig { return notify.NewConfig(typ) }

// DefaultSummary is the summary template of a rule without one.
const DefaultSummary = "{{ .Rule }}: {{ .Value }} {{ .Op }} {{ .Threshold }}"

// DefaultBaselineSummary is the summary template of a baseline rule without one.
const DefaultBaselineSummary = "{{ .Rule }}: {{ .Current }} vs baseline {{ .Baseline }} ({{ .Compare }} {{ .Value }} {{ .Op }} {{ .Threshold }})"

var (
	// ErrInvalidConfig wraps every configuration error.
	ErrInvalidConfig = errors.New("invalid alert processor configuration")

	ruleNameRE = regexp.MustCompile(`^[a-z0-9_]+$`)
)

func cfgErr(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrInvalidConfig}, args...)...)
}

// Validate checks the configuration; every error names the offending key.
func (c *Config) Validate() error {
	var errs []error
	if c.EvaluationInterval <= 0 {
		errs = append(errs, cfgErr("`evaluation_interval` must be positive, got %v", c.EvaluationInterval))
	}
	if c.RepeatInterval < 0 {
		errs = append(errs, cfgErr("`repeat_interval` must not be negative (0 disables repeats), got %v", c.RepeatInterval))
	}
	if c.MaxGroups <= 0 {
		errs = append(errs, cfgErr("`max_groups` must be positive, got %d", c.MaxGroups))
	}
	seen := map[string]int{}
	for i := range c.Rules {
		r := &c.Rules[i]
		if j, dup := seen[r.Name]; dup && r.Name != "" {
			errs = append(errs, cfgErr("`rules[%d].name` %q is already used by rules[%d]; rule names must be unique", i, r.Name, j))
		}
		seen[r.Name] = i
		errs = append(errs, r.validate(i, c.EvaluationInterval)...)
	}
	for i := range c.Notifiers {
		if c.Notifiers[i].Enabled {
			for _, err := range c.Notifiers[i].Check(fmt.Sprintf("notifiers[%d]", i)) {
				errs = append(errs, cfgErr("%w", err))
			}
		}
	}
	return errors.Join(errs...)
}

func (r *RuleConfig) validate(i int, eval time.Duration) []error {
	var errs []error
	key := func(k string) string { return fmt.Sprintf("`rules[%d].%s`", i, k) }
	if !ruleNameRE.MatchString(r.Name) {
		errs = append(errs, cfgErr("%s %q must match [a-z0-9_]+", key("name"), r.Name))
	}
	switch {
	case r.Metric == "" && r.Event == "":
		errs = append(errs, cfgErr("rules[%d] needs exactly one of `metric` and `event`, got neither", i))
	case r.Metric != "" && r.Event != "":
		errs = append(errs, cfgErr("rules[%d] needs exactly one of `metric` and `event`, got both", i))
	case r.Metric != "":
		if err := eventmatch.Validate(r.Metric); err != nil {
			errs = append(errs, cfgErr("%s: %v", key("metric"), err))
		}
		if r.Field != "" {
			errs = append(errs, cfgErr("%s applies to event rules only", key("field")))
		}
	default:
		if err := eventmatch.Validate(r.Event); err != nil {
			errs = append(errs, cfgErr("%s: %v", key("event"), err))
		}
	}
	if r.Stat < StatEach || r.Stat > StatRate {
		errs = append(errs, cfgErr("%s %v is unknown; use one of p50 p90 p95 p99 p999 avg min max sum count increase rate last", key("stat"), r.Stat))
	} else if r.Event != "" && r.Metric == "" && r.Field == "" {
		if r.Stat == StatEach {
			errs = append(errs, cfgErr("rules[%d]: an event rule without `stat` checks each event's `field`; set %s or %s", i, key("field"), key("stat")))
		} else if r.Stat.needsValue() {
			errs = append(errs, cfgErr("%s %q on an event rule needs `field` (only count, increase and rate count events without one)", key("stat"), r.Stat))
		}
	}
	if r.Op == OpUnset {
		errs = append(errs, cfgErr("%s is required; use one of > >= < <= == !=", key("op")))
	} else if r.Op < OpUnset || r.Op > OpNE {
		errs = append(errs, cfgErr("%s %v is unknown; use one of > >= < <= == !=", key("op"), r.Op))
	}
	if r.Severity < SeverityUnset || r.Severity > SeverityCritical {
		errs = append(errs, cfgErr("%s %v is unknown; use one of critical error warning info", key("severity"), r.Severity))
	}
	if r.For < 0 {
		errs = append(errs, cfgErr("%s must not be negative, got %v", key("for"), r.For))
	}
	if r.KeepFiringFor < 0 {
		errs = append(errs, cfgErr("%s must not be negative, got %v", key("keep_firing_for"), r.KeepFiringFor))
	}
	if r.Window < 0 {
		errs = append(errs, cfgErr("%s must not be negative, got %v", key("window"), r.Window))
	} else if r.Window > 0 && eval > 0 && r.Window < eval {
		errs = append(errs, cfgErr("%s %v is shorter than `evaluation_interval` %v", key("window"), r.Window, eval))
	}
	errs = append(errs, r.validateBaseline(key, eval)...)
	if r.MinCount < 0 {
		errs = append(errs, cfgErr("%s must not be negative, got %d", key("min_count"), r.MinCount))
	}
	gb := map[string]bool{}
	for j, g := range r.GroupBy {
		if g == "" {
			errs = append(errs, cfgErr("`rules[%d].group_by[%d]` is empty", i, j))
		}
		if gb[g] {
			errs = append(errs, cfgErr("`rules[%d].group_by[%d]` %q is listed twice", i, j, g))
		}
		gb[g] = true
	}
	if _, err := parseSummary(r.Name, r.Summary, r.Baseline != nil); err != nil {
		errs = append(errs, cfgErr("%s: %v", key("summary"), err))
	}
	return errs
}

func (r *RuleConfig) validateBaseline(key func(string) string, eval time.Duration) []error {
	var errs []error
	if r.Compare < CompareUnset || r.Compare > CompareDifference {
		errs = append(errs, cfgErr("%s %v is unknown; compare must be ratio or difference", key("compare"), r.Compare))
	}
	b := r.Baseline
	if b == nil {
		if r.Compare != CompareUnset {
			errs = append(errs, cfgErr("%s applies only with %s", key("compare"), key("baseline")))
		}
		return errs
	}
	if r.Event != "" && r.Metric == "" && r.Stat == StatEach {
		errs = append(errs, cfgErr("%s needs %s: a per-event check has no window statistic to compare", key("baseline"), key("stat")))
	}
	if b.Window <= 0 {
		errs = append(errs, cfgErr("%s must be positive, got %v", key("baseline.window"), b.Window))
	} else if w := r.window(eval); b.Window < w {
		errs = append(errs, cfgErr("%s %v is shorter than %s %v; a baseline is at least as long as the window", key("baseline.window"), b.Window, key("window"), w))
	}
	if b.Offset < 0 {
		errs = append(errs, cfgErr("%s must not be negative, got %v", key("baseline.offset"), b.Offset))
	}
	return errs
}

// window is the rule's window: Window, else its default.
func (r *RuleConfig) window(eval time.Duration) time.Duration {
	switch {
	case r.Window > 0:
		return r.Window
	case r.Stat == StatEach && r.Metric == "":
		return eval // per-event checks look at one evaluation interval
	}
	return max(defaultStatWindow, eval)
}

func parseSummary(name, s string, baseline bool) (*template.Template, error) {
	switch {
	case s != "":
	case baseline:
		s = DefaultBaselineSummary
	default:
		s = DefaultSummary
	}
	return template.New(name).Option("missingkey=zero").Parse(s)
}

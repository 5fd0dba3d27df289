package notify // import "github.com/anvil/anvilcol/processor/alertprocessor/internal/notify"

import (
	"fmt"
	"reflect"
	"strings"
	"time"

	"go.opentelemetry.io/collector/config/confighttp"
	"go.opentelemetry.io/collector/config/configretry"
	"go.opentelemetry.io/collector/confmap"
)

// Config is one notifier: the keys every type has, then one sub-struct per
// type. The sub-structs are squashed, so a notifier is written flat
// (`type: slack` next to `webhook_url:`); only the sub-struct of the
// notifier's `type` may be set.
type Config struct {
	// Type is slack, pagerduty, alertmanager, webhook or log. Required.
	Type string `mapstructure:"type"`
	// Enabled turns the notifier on; a disabled notifier is neither checked
	// nor used (so a shipped config can carry a notifier switched on from
	// the environment). Default true.
	Enabled bool `mapstructure:"enabled"`
	// MinSeverity: only alerts of this severity or higher are sent here. Default info (all).
	MinSeverity Severity `mapstructure:"min_severity"`
	// QueueSize bounds the notifications waiting for this notifier; when full,
	// the oldest is dropped and counted. Default 1000.
	QueueSize int `mapstructure:"queue_size"`
	// BackOffConfig sets the retries of failed deliveries. Default enabled,
	// initial 1s, randomization 0.5, multiplier 1.5, max 30s, max elapsed 5m.
	BackOffConfig configretry.BackOffConfig `mapstructure:"retry_on_failure"`
	// ClientConfig holds the HTTP client settings: endpoint, timeout, tls,
	// headers, ... (the HTTP notifiers). Timeout default 10s.
	confighttp.ClientConfig `mapstructure:",squash"`

	Slack        SlackConfig        `mapstructure:",squash"`
	PagerDuty    PagerDutyConfig    `mapstructure:",squash"`
	Alertmanager AlertmanagerConfig `mapstructure:",squash"`
	Webhook      WebhookConfig      `mapstructure:",squash"`
	Log          LogConfig          `mapstructure:",squash"`

	_ struct{}
}

// NewConfig returns a notifier of type typ with every default set.
func NewConfig(typ string) Config {
	hc := confighttp.NewDefaultClientConfig()
	hc.Timeout = 10 * time.Second
	bo := configretry.NewDefaultBackOffConfig()
	bo.InitialInterval = time.Second
	c := Config{
		Type:          typ,
		Enabled:       true,
		MinSeverity:   SeverityInfo,
		QueueSize:     1000,
		BackOffConfig: bo,
		ClientConfig:  hc,
	}
	if t, ok := lookup(typ); ok && t.defaults != nil {
		t.defaults(&c)
	}
	return c
}

// Unmarshal fills a list element's defaults (those of its `type`) before
// reading it, so every notifier in the list gets them.
func (c *Config) Unmarshal(conf *confmap.Conf) error {
	typ, _ := conf.Get("type").(string)
	*c = NewConfig(typ)
	return conf.Unmarshal(c)
}

// Check returns the configuration errors of an enabled notifier, each
// naming its key under path (`notifiers[2]`). It is not Validate: the
// collector would call that on disabled notifiers too.
func (c *Config) Check(path string) []error {
	key := func(k string) string { return fmt.Sprintf("`%s.%s`", path, k) }
	var errs []error
	t, ok := lookup(c.Type)
	if !ok {
		errs = append(errs, fmt.Errorf("%s %q is unknown; use one of %s", key("type"), c.Type, strings.Join(typeNames(), " ")))
	} else if t.check != nil {
		errs = append(errs, t.check(c, key)...)
	}
	for _, o := range notifierTypes {
		if o.name == c.Type {
			continue
		}
		for _, k := range setKeys(o.sub(c)) {
			errs = append(errs, fmt.Errorf("%s applies to %s notifiers only", key(k), o.name))
		}
	}
	if c.MinSeverity < 0 || c.MinSeverity > SeverityCritical {
		errs = append(errs, fmt.Errorf("%s %d is unknown; use one of critical error warning info", key("min_severity"), c.MinSeverity))
	}
	if c.QueueSize <= 0 {
		errs = append(errs, fmt.Errorf("%s must be positive, got %d", key("queue_size"), c.QueueSize))
	}
	if err := c.BackOffConfig.Validate(); err != nil {
		errs = append(errs, fmt.Errorf("%s: %w", key("retry_on_failure"), err))
	}
	if err := c.ClientConfig.Validate(); err != nil {
		errs = append(errs, fmt.Errorf("%s: %w", path, err))
	}
	return errs
}

// setKeys lists the mapstructure keys of the fields of the struct v that
// are not zero.
func setKeys(v any) []string {
	rv := reflect.ValueOf(v)
	var keys []string
	for i := range rv.NumField() {
		if !rv.Field(i).IsZero() {
			keys = append(keys, strings.Split(rv.Type().Field(i).Tag.Get("mapstructure"), ",")[0])
		}
	}
	return keys
}

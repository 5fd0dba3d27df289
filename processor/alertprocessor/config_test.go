package alertprocessor

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/confmap"

	"github.com/anvil/anvilcol/internal/componenttesthelp"
)

func loadConfig(t *testing.T, id component.ID) *Config {
	t.Helper()
	cfg := createDefaultConfig().(*Config)
	require.NoError(t, componenttesthelp.LoadConfig(t, id, cfg))
	return cfg
}

func TestLoadConfig(t *testing.T) {
	cfg := loadConfig(t, component.MustNewIDWithName("alert", ""))
	assert.Equal(t, 15*time.Second, cfg.EvaluationInterval)
	assert.Equal(t, 4*time.Hour, cfg.RepeatInterval)
	require.Len(t, cfg.Rules, 4)
	assert.Equal(t, RuleConfig{
		Name: "dispatch_latency_p99", Metric: "anvil.assignment.dispatch.duration", Stat: StatP99, Window: 5 * time.Minute,
		Op: OpGT, Threshold: 500, GroupBy: []string{"policy_type"}, Severity: SeverityWarning,
		Summary: "Assignment dispatch p99 {{ .Value }} ms > 500 ms ({{ .Labels.policy_type }})",
	}, cfg.Rules[0])
	assert.Equal(t, StatIncrease, cfg.Rules[3].Stat)
	require.Len(t, cfg.Notifiers, 6)
	assert.True(t, cfg.Notifiers[0].Enabled)
	assert.False(t, cfg.Notifiers[5].Enabled)
	slack := cfg.Notifiers[0]
	assert.Equal(t, "https://hooks.slack.com/services/T000/B000/XXXX", slack.Slack.WebhookURL)
	// Every list element gets the notifier defaults.
	assert.Equal(t, 1000, slack.QueueSize)
	assert.Equal(t, 10*time.Second, slack.Timeout)
	assert.True(t, slack.BackOffConfig.Enabled)
	assert.Equal(t, time.Second, slack.BackOffConfig.InitialInterval)
	wh := cfg.Notifiers[3]
	assert.Equal(t, 50, wh.QueueSize)
	assert.Equal(t, 5*time.Second, wh.Timeout)
	assert.Equal(t, 2*time.Second, wh.BackOffConfig.InitialInterval)
	assert.True(t, wh.BackOffConfig.Enabled, "defaults kept for keys not set")
	v, ok := wh.Headers.Get("Authorization")
	require.True(t, ok)
	assert.Equal(t, "Bearer token", string(v))
	assert.Equal(t, time.Minute, cfg.Notifiers[2].Alertmanager.ResendInterval)

	empty := loadConfig(t, component.MustNewIDWithName("alert", "empty"))
	assert.Equal(t, createDefaultConfig(), empty)

	base := loadConfig(t, component.MustNewIDWithName("alert", "baseline"))
	require.NoError(t, base.Validate())
	require.Len(t, base.Rules, 2)
	assert.Equal(t, RuleConfig{
		Name: "agreement_drop", Metric: "anvil.agreement.score", Stat: StatAvg, Window: time.Hour,
		Baseline: &BaselineConfig{Window: 24 * time.Hour, Offset: time.Hour}, Compare: CompareRatio,
		Op: OpLT, Threshold: 0.8, MinCount: 20, GroupBy: []string{"queue_id", "dimension"},
	}, base.Rules[0])
	assert.Equal(t, &BaselineConfig{Window: 24 * time.Hour}, base.Rules[1].Baseline, "offset defaults to 0")
	assert.Equal(t, CompareUnset, base.Rules[1].Compare, "ratio by default")
}

func TestValidateNamesTheKey(t *testing.T) {
	ok := func() RuleConfig {
		return RuleConfig{Name: "r", Event: "anvil.export.failed", Stat: StatCount, Op: OpGT, Threshold: 1}
	}
	tests := []struct {
		name   string
		mutate func(c *Config)
		want   string
	}{
		{"missing op", func(c *Config) { c.Rules[0].Op = OpUnset }, "`rules[0].op` is required; use one of > >= < <= == !="},
		{"metric and event", func(c *Config) { c.Rules[0].Metric = "m" }, "rules[0] needs exactly one of `metric` and `event`, got both"},
		{"neither", func(c *Config) { c.Rules[0].Event = "" }, "rules[0] needs exactly one of `metric` and `event`, got neither"},
		{"negative for", func(c *Config) { c.Rules[0].For = -time.Second }, "`rules[0].for` must not be negative"},
		{"negative keep_firing_for", func(c *Config) { c.Rules[0].KeepFiringFor = -time.Second }, "`rules[0].keep_firing_for` must not be negative"},
		{"window shorter than evaluation", func(c *Config) { c.Rules[0].Window = 5 * time.Second }, "`rules[0].window` 5s is shorter than `evaluation_interval` 15s"},
		{"percentile on event without field", func(c *Config) { c.Rules[0].Stat = StatP99 }, "`rules[0].stat` \"p99\" on an event rule needs `field`"},
		{"avg on event without field", func(c *Config) { c.Rules[0].Stat = StatAvg }, "`rules[0].stat` \"avg\" on an event rule needs `field`"},
		{"event without stat or field", func(c *Config) { c.Rules[0].Stat = StatEach }, "set `rules[0].field` or `rules[0].stat`"},
		{"field on metric rule", func(c *Config) { c.Rules[0].Event, c.Rules[0].Metric, c.Rules[0].Field = "", "m", "v" }, "`rules[0].field` applies to event rules only"},
		{"bad name", func(c *Config) { c.Rules[0].Name = "Low-Agreement" }, "`rules[0].name` \"Low-Agreement\" must match [a-z0-9_]+"},
		{"duplicate name", func(c *Config) { c.Rules = append(c.Rules, ok()) }, "`rules[1].name` \"r\" is already used by rules[0]"},
		{"bad pattern", func(c *Config) { c.Rules[0].Event = "anvil..x" }, "`rules[0].event`: malformed event pattern"},
		{"bad template", func(c *Config) { c.Rules[0].Summary = "{{ .Value " }, "`rules[0].summary`"},
		{"baseline.window missing", func(c *Config) { c.Rules[0].Baseline = &BaselineConfig{} }, "`rules[0].baseline.window` must be positive, got 0s"},
		{"baseline.window negative", func(c *Config) { c.Rules[0].Baseline = &BaselineConfig{Window: -time.Hour} }, "`rules[0].baseline.window` must be positive, got -1h0m0s"},
		{"baseline.window shorter than window", func(c *Config) {
			c.Rules[0].Window = time.Hour
			c.Rules[0].Baseline = &BaselineConfig{Window: 30 * time.Minute}
		}, "`rules[0].baseline.window` 30m0s is shorter than `rules[0].window` 1h0m0s"},
		{"baseline.window shorter than the default window", func(c *Config) { c.Rules[0].Baseline = &BaselineConfig{Window: time.Minute} },
			"`rules[0].baseline.window` 1m0s is shorter than `rules[0].window` 5m0s"},
		{"baseline.offset negative", func(c *Config) { c.Rules[0].Baseline = &BaselineConfig{Window: time.Hour, Offset: -time.Minute} },
			"`rules[0].baseline.offset` must not be negative, got -1m0s"},
		{"baseline on a per-event check", func(c *Config) {
			c.Rules[0].Stat, c.Rules[0].Field = StatEach, "v"
			c.Rules[0].Baseline = &BaselineConfig{Window: time.Hour}
		}, "`rules[0].baseline` needs `rules[0].stat`: a per-event check has no window statistic to compare"},
		{"compare without baseline", func(c *Config) { c.Rules[0].Compare = CompareDifference }, "`rules[0].compare` applies only with `rules[0].baseline`"},
		{"compare unknown", func(c *Config) {
			c.Rules[0].Baseline = &BaselineConfig{Window: time.Hour}
			c.Rules[0].Compare = 7
		}, "`rules[0].compare` Compare(7) is unknown; compare must be ratio or difference"},
		{"negative min_count", func(c *Config) { c.Rules[0].MinCount = -1 }, "`rules[0].min_count` must not be negative, got -1"},
		{"group_by twice", func(c *Config) { c.Rules[0].GroupBy = []string{"a", "a"} }, "`rules[0].group_by[1]` \"a\" is listed twice"},
		{"evaluation_interval", func(c *Config) { c.EvaluationInterval = 0 }, "`evaluation_interval` must be positive"},
		{"repeat_interval", func(c *Config) { c.RepeatInterval = -time.Second }, "`repeat_interval` must not be negative"},
		{"notifier type", func(c *Config) { c.Notifiers = []NotifierConfig{NewNotifierConfig("email")} }, "`notifiers[0].type` \"email\" is unknown"},
		{"slack webhook_url", func(c *Config) { c.Notifiers = []NotifierConfig{NewNotifierConfig("slack")} }, "`notifiers[0].webhook_url` is required"},
		{"pagerduty routing_key", func(c *Config) { c.Notifiers = []NotifierConfig{NewNotifierConfig("pagerduty")} }, "`notifiers[0].routing_key` is required"},
		{"alertmanager endpoint", func(c *Config) { c.Notifiers = []NotifierConfig{NewNotifierConfig("alertmanager")} }, "`notifiers[0].endpoints` (or `notifiers[0].endpoint`) is required for an alertmanager notifier"},
		{"webhook endpoint", func(c *Config) { c.Notifiers = []NotifierConfig{NewNotifierConfig("webhook")} }, "`notifiers[0].endpoint` is required for a webhook notifier"},
		{"min_severity", func(c *Config) {
			n := NewNotifierConfig("log")
			n.MinSeverity = 9
			c.Notifiers = []NotifierConfig{n}
		}, "`notifiers[0].min_severity` 9 is unknown"},
		{"enabled notifier is checked", func(c *Config) {
			n := NewNotifierConfig("slack")
			c.Notifiers = []NotifierConfig{NewNotifierConfig("log"), n}
		}, "`notifiers[1].webhook_url` is required"},
		{"queue_size", func(c *Config) {
			n := NewNotifierConfig("log")
			n.QueueSize = 0
			c.Notifiers = []NotifierConfig{n}
		}, "`notifiers[0].queue_size` must be positive"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := createDefaultConfig().(*Config)
			cfg.Rules = []RuleConfig{ok()}
			require.NoError(t, cfg.Validate())
			tc.mutate(cfg)
			err := cfg.Validate()
			require.Error(t, err)
			assert.ErrorIs(t, err, ErrInvalidConfig)
			assert.Contains(t, err.Error(), tc.want)
		})
	}
}

func TestDisabledNotifierIsNeitherCheckedNorBuilt(t *testing.T) {
	cfg := createDefaultConfig().(*Config)
	off := NewNotifierConfig("slack") // no webhook_url
	off.Enabled = false
	cfg.Notifiers = []NotifierConfig{off, NewNotifierConfig("log")}
	require.NoError(t, cfg.Validate())
	h, err := acquire(testSettings(t), cfg, wallClock{})
	require.NoError(t, err)
	require.NoError(t, h.Start(context.Background(), componenttest.NewNopHost()))
	t.Cleanup(func() { _ = h.Shutdown(context.Background()) })
	assert.Equal(t, 1, h.engine().sink.(notifiersSink).ns.Len(), "the log notifier only")
}

func TestRuleDefaults(t *testing.T) {
	compile := func(rc RuleConfig, eval time.Duration) (*rule, error) {
		ar, err := compileRule(rc, eval, &ruleEnv{})
		if err != nil {
			return nil, err
		}
		return ar.alerts(), nil
	}
	r, err := compile(RuleConfig{Name: "m", Metric: "m", Op: OpGT}, 15*time.Second)
	require.NoError(t, err)
	assert.Equal(t, StatLast, r.stat, "metric rules default to last")
	assert.Equal(t, SeverityWarning, r.sev)
	assert.Equal(t, 5*time.Minute, r.window)
	assert.Equal(t, 15*time.Second, r.slotWidth)
	r, err = compile(RuleConfig{Name: "e", Event: "e", Field: "v", Op: OpLT}, 15*time.Second)
	require.NoError(t, err)
	assert.Equal(t, StatEach, r.stat)
	assert.Equal(t, 15*time.Second, r.window, "per-event checks look at one evaluation interval")
	r, err = compile(RuleConfig{Name: "w", Event: "e", Stat: StatCount, Window: 24 * time.Hour, Op: OpLT}, time.Second)
	require.NoError(t, err)
	assert.Equal(t, 4*time.Minute, r.slotWidth, "at most 360 slots per window")
}

// Stat, op and severity are parsed when the config is read: an unknown name
// fails there, naming the key and the allowed values.
func TestUnknownNamesFailWhenReadNamingTheKey(t *testing.T) {
	for _, tc := range []struct{ key, value, want string }{
		{"stat", "p42", `'rules[0].stat' unknown stat "p42"; use one of last p50 p90 p95 p99 p999 avg min max sum count increase rate`},
		{"op", "=>", `'rules[0].op' unknown op "=>"; use one of > >= < <= == !=`},
		{"op", "", `'rules[0].op' unknown op ""`},
		{"severity", "fatal", `'rules[0].severity' unknown severity "fatal"; use one of critical error warning info`},
		{"compare", "quotient", `'rules[0].compare' unknown compare "quotient"; use ratio or difference`},
	} {
		rule := map[string]any{"name": "r", "event": "e", "stat": "count", "op": ">"}
		rule[tc.key] = tc.value
		conf := confmap.NewFromStringMap(map[string]any{"rules": []any{rule}})
		cfg := createDefaultConfig().(*Config)
		err := conf.Unmarshal(cfg)
		require.Error(t, err, tc.key)
		assert.Contains(t, err.Error(), tc.want)
	}
	conf := confmap.NewFromStringMap(map[string]any{"rules": []any{map[string]any{
		"name": "r", "event": "e", "field": "v", "op": "<=", "severity": "critical"}}})
	cfg := createDefaultConfig().(*Config)
	require.NoError(t, conf.Unmarshal(cfg))
	assert.Equal(t, RuleConfig{Name: "r", Event: "e", Field: "v", Stat: StatEach, Op: OpLE, Severity: SeverityCritical}, cfg.Rules[0])
}

package samplingprocessor

import (
	"errors"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/confmap/confmaptest"
	"go.opentelemetry.io/collector/confmap/xconfmap"

	"github.com/anvil/anvilcol/internal/eventmatch"
	"github.com/anvil/anvilcol/processor/samplingprocessor/internal/metadata"
)

func ptr(f float64) *float64 { return &f }

func TestLoadConfig(t *testing.T) {
	cm, err := confmaptest.LoadConf(filepath.Join("testdata", "config.yaml"))
	require.NoError(t, err)
	tests := []struct {
		id   component.ID
		want *Config
	}{
		{id: component.NewID(metadata.Type), want: createDefaultConfig().(*Config)},
		{
			id: component.NewIDWithName(metadata.Type, "adr008"),
			want: &Config{
				DefaultRate:       1,
				HashAttribute:     "assignment_id",
				SamplingPrecision: 14,
				Rules: []RuleConfig{
					{Name: "critical", Events: []string{"anvil.agreement.low_score", "anvil.auth.access_denied", "*.exception"}, Rate: ptr(1)},
					{Name: "label_submits", Events: []string{"anvil.label.submit.*", "anvil.label.submit"}, Rate: ptr(0.1)},
					{Name: "noisy_queue", Events: []string{"anvil.assignment.*"}, Attributes: map[string]string{"queue_id": "q-noisy"}, Rate: ptr(0.01), MaxPerSecond: 100},
				},
			},
		},
		{id: component.NewIDWithName(metadata.Type, "precision4"), want: &Config{DefaultRate: 0.5, SamplingPrecision: 4}},
	}
	for _, tt := range tests {
		t.Run(tt.id.String(), func(t *testing.T) {
			cfg := NewFactory().CreateDefaultConfig()
			sub, err := cm.Sub(tt.id.String())
			require.NoError(t, err)
			require.NoError(t, sub.Unmarshal(cfg))
			require.NoError(t, xconfmap.Validate(cfg))
			assert.Equal(t, tt.want, cfg)
		})
	}
}

func TestDefaultConfigKeepsEverything(t *testing.T) {
	cfg := createDefaultConfig().(*Config)
	assert.Equal(t, 1.0, cfg.DefaultRate)
	assert.Equal(t, 14, cfg.SamplingPrecision)
	assert.Empty(t, cfg.Rules)
	require.NoError(t, cfg.Validate())
}

func TestValidateNamesTheKey(t *testing.T) {
	valid := func() RuleConfig { return RuleConfig{Name: "r", Events: []string{"anvil.*"}, Rate: ptr(0.5)} }
	tests := []struct {
		name    string
		mutate  func(*Config)
		wantKey string
		is      error
	}{
		{"default rate above 1", func(c *Config) { c.DefaultRate = 1.5 }, "`default_rate` must be within [0, 1]", nil},
		{"default rate negative", func(c *Config) { c.DefaultRate = -0.1 }, "`default_rate` must be within [0, 1]", nil},
		{"rule rate above 1", func(c *Config) { c.Rules[0].Rate = ptr(2) }, "`rules[0].rate` must be within [0, 1], got 2", nil},
		{"rule rate negative", func(c *Config) { c.Rules[0].Rate = ptr(-1) }, "`rules[0].rate` must be within [0, 1]", nil},
		{"rate too small", func(c *Config) { c.Rules[0].Rate = ptr(1e-20) }, "`rules[0].rate` must be 0 or at least 2^-56", nil},
		{"missing name", func(c *Config) { c.Rules[0].Name = "" }, "`rules[0].name` is required", nil},
		{"reserved name", func(c *Config) { c.Rules[0].Name = "default" }, "`rules[0].name` \"default\" is reserved", nil},
		{"duplicate name", func(c *Config) { c.Rules = append(c.Rules, valid()) }, "`rules[1].name` \"r\" duplicates rules[0].name", nil},
		{"empty events", func(c *Config) { c.Rules[0].Events = nil }, "`rules[0].events` must list at least one event pattern", nil},
		{"malformed pattern", func(c *Config) { c.Rules[0].Events = []string{"anvil.*", "anvil..label"} }, "`rules[0].events[1]`: malformed event pattern", eventmatch.ErrMalformedPattern},
		{"negative max_per_second", func(c *Config) { c.Rules[0].MaxPerSecond = -5 }, "`rules[0].max_per_second` must be a finite number >= 0", nil},
		{"precision out of range", func(c *Config) { c.SamplingPrecision = 15 }, "`sampling_precision` must be within [1, 14]", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := createDefaultConfig().(*Config)
			cfg.Rules = []RuleConfig{valid()}
			require.NoError(t, cfg.Validate())
			tt.mutate(cfg)
			err := cfg.Validate()
			require.Error(t, err)
			assert.Contains(t, err.Error(), tt.wantKey)
			assert.ErrorIs(t, err, ErrInvalidConfig)
			if tt.is != nil {
				assert.True(t, errors.Is(err, tt.is), "want %v in %v", tt.is, err)
			}
		})
	}
}

func TestValidateReportsEveryProblem(t *testing.T) {
	cfg := &Config{DefaultRate: 3, SamplingPrecision: 14, Rules: []RuleConfig{{Events: nil, MaxPerSecond: -1}}}
	err := cfg.Validate()
	require.Error(t, err)
	for _, key := range []string{"`default_rate`", "`rules[0].name`", "`rules[0].events`", "`rules[0].max_per_second`"} {
		assert.Contains(t, err.Error(), key)
	}
}

func TestOmittedRateKeepsAll(t *testing.T) {
	cfg := createDefaultConfig().(*Config)
	cfg.Rules = []RuleConfig{{Name: "capped", Events: []string{"a.b"}, MaxPerSecond: 3}}
	require.NoError(t, cfg.Validate())
	rs, err := newRuleSet(cfg)
	require.NoError(t, err)
	assert.True(t, rs.rules[0].keepsAll())
}

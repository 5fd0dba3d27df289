package cardinalityguardprocessor

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/confmap/confmaptest"
	"go.opentelemetry.io/collector/confmap/xconfmap"

	"github.com/anvil/anvilcol/processor/cardinalityguardprocessor/internal/metadata"
)

func intPtr(v int) *int { return &v }

func loadConfig(t *testing.T, name string) *Config {
	t.Helper()
	cm, err := confmaptest.LoadConf(filepath.Join("testdata", "config.yaml"))
	require.NoError(t, err)
	id := component.NewID(metadata.Type)
	if name != "" {
		id = component.NewIDWithName(metadata.Type, name)
	}
	sub, err := cm.Sub(id.String())
	require.NoError(t, err)
	cfg := NewFactory().CreateDefaultConfig()
	require.NoError(t, sub.Unmarshal(cfg))
	return cfg.(*Config)
}

func TestConfigDefaultsAreADR008(t *testing.T) {
	cfg := loadConfig(t, "")
	assert.Equal(t, []string{"labeler_id", "sample_id", "assignment_id"}, cfg.DropAttributes)
	assert.Equal(t, 2000, cfg.MaxSeriesPerMetric)
	assert.Equal(t, time.Hour, cfg.SeriesTTL)
	assert.Empty(t, cfg.Metrics)
	assert.NoError(t, xconfmap.Validate(cfg))
}

func TestConfigLoadsOverrides(t *testing.T) {
	cfg := loadConfig(t, "custom")
	require.NoError(t, xconfmap.Validate(cfg))
	assert.Equal(t, []string{"labeler_id", "sample_id", "assignment_id", "session_id"}, cfg.DropAttributes)
	assert.Equal(t, 1000, cfg.MaxSeriesPerMetric)
	assert.Equal(t, 30*time.Minute, cfg.SeriesTTL)
	assert.Equal(t, []string{"queue_id", "schema_version_id"}, cfg.Metrics["anvil.label.submit.count"].AllowedAttributes)
	assert.Equal(t, intPtr(500), cfg.Metrics["anvil.label.submit.count"].MaxSeries)
	assert.Equal(t, intPtr(0), cfg.Metrics["anvil.export.rows"].MaxSeries)
	assert.Nil(t, cfg.Metrics["anvil.export.rows"].AllowedAttributes)
}

func TestConfigAllowlistMayNameADroppedAttribute(t *testing.T) {
	cfg := loadConfig(t, "allowed_and_dropped")
	require.NoError(t, xconfmap.Validate(cfg))
	assert.Contains(t, cfg.DropAttributes, "labeler_id")
	assert.Equal(t, []string{"queue_id", "labeler_id"}, cfg.Metrics["anvil.label.submit.count"].AllowedAttributes)
}

func TestConfigInvalidNamesTheKey(t *testing.T) {
	tests := []struct {
		name    string
		wantErr error
		wantKey string
	}{
		{"negative_cap", ErrNegativeCap, "max_series_per_metric (-1)"},
		{"negative_override", ErrNegativeCap, "metrics::anvil.queue.depth::max_series (-5)"},
		{"empty_drop", ErrEmptyName, "drop_attributes[1]"},
		{"empty_metric_name", ErrEmptyName, "metrics: a metric name"},
		{"empty_allowed", ErrEmptyName, "metrics::anvil.queue.depth::allowed_attributes[0]"},
		{"short_ttl", ErrTTLTooShort, "series_ttl (10ms)"},
		{"duplicate", ErrDuplicate, `drop_attributes[1]: "labeler_id"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := xconfmap.Validate(loadConfig(t, tt.name))
			require.Error(t, err)
			assert.ErrorIs(t, err, tt.wantErr)
			assert.Contains(t, err.Error(), tt.wantKey)
		})
	}
}

func TestConfigRejectsOverflowAttributeName(t *testing.T) {
	cfg := createDefaultConfig().(*Config)
	cfg.DropAttributes = []string{OverflowAttribute}
	err := cfg.Validate()
	assert.ErrorIs(t, err, ErrReservedName)
	assert.Contains(t, err.Error(), "drop_attributes[0]")
}

package zerostepprocessor

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/confmap/confmaptest"
	"go.opentelemetry.io/collector/confmap/xconfmap"

	"github.com/anvil/anvilcol/processor/zerostepprocessor/internal/metadata"
)

func loadConfig(t *testing.T, name string) *Config {
	t.Helper()
	cm, err := confmaptest.LoadConf(filepath.Join("testdata", "config.yaml"))
	require.NoError(t, err)
	sub, err := cm.Sub(component.NewIDWithName(metadata.Type, name).String())
	require.NoError(t, err)
	cfg := createDefaultConfig().(*Config)
	require.NoError(t, sub.Unmarshal(cfg))
	return cfg
}

func TestConfig(t *testing.T) {
	assert.Equal(t, &Config{Hold: 35 * time.Second, MaxAge: 2 * time.Minute, SeriesTTL: time.Hour, MaxSeries: 200_000}, loadConfig(t, ""))
	assert.Equal(t, &Config{Hold: 20 * time.Second, MaxAge: time.Minute, SeriesTTL: 30 * time.Minute, MaxSeries: 1000}, loadConfig(t, "custom"))
	require.NoError(t, xconfmap.Validate(loadConfig(t, "")))
}

func TestConfigValidationNamesTheKey(t *testing.T) {
	assert.ErrorContains(t, xconfmap.Validate(loadConfig(t, "negative_hold")), "hold must be positive, got -1s")
	assert.ErrorContains(t, xconfmap.Validate(loadConfig(t, "short_ttl")), "series_ttl 30s must be at least hold 1m0s")
	cfg := createDefaultConfig().(*Config)
	cfg.MaxAge, cfg.MaxSeries = 0, 0
	err := cfg.Validate()
	assert.ErrorContains(t, err, "max_age must be positive")
	assert.ErrorContains(t, err, "max_series must be positive")
}

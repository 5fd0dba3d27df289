package anvilreceiver

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/confmap"
	"go.opentelemetry.io/collector/confmap/confmaptest"
	"go.opentelemetry.io/collector/confmap/xconfmap"

	"github.com/anvil/anvilcol/receiver/anvilreceiver/internal/metadata"
)

func loadConfig(t *testing.T, name string) (*Config, error) {
	t.Helper()
	cm, err := confmaptest.LoadConf(filepath.Join("testdata", "config.yaml"))
	require.NoError(t, err)
	cfg := NewFactory().CreateDefaultConfig()
	sub, err := cm.Sub(component.NewIDWithName(metadata.Type, name).String())
	require.NoError(t, err)
	require.NoError(t, sub.Unmarshal(cfg))
	return cfg.(*Config), xconfmap.Validate(cfg)
}

func TestConfigDefaults(t *testing.T) {
	cfg, err := loadConfig(t, "")
	require.NoError(t, err)
	assert.Equal(t, "localhost:4320", cfg.ServerConfig.NetAddr.Endpoint)
	assert.Equal(t, "nanosecond", cfg.NativeTimeUnit)
	assert.Equal(t, 10000, cfg.MaxEventsPerRequest)
	assert.True(t, cfg.DefaultMetrics)
	assert.Equal(t, 10*time.Second, cfg.MetricsFlushInterval)
	assert.Equal(t, TemporalityCumulative, cfg.Temporality)
	assert.Equal(t, time.Hour, cfg.SeriesTTL)
	assert.Equal(t, 10000, cfg.MaxSeriesPerMetric)
	assert.Len(t, cfg.effectiveMetrics(), len(catalog()))
}

func TestConfigCustom(t *testing.T) {
	cfg, err := loadConfig(t, "custom")
	require.NoError(t, err)
	assert.Equal(t, "127.0.0.1:4999", cfg.ServerConfig.NetAddr.Endpoint)
	assert.Equal(t, "microsecond", cfg.NativeTimeUnit)
	assert.Equal(t, 500, cfg.MaxEventsPerRequest)
	assert.Equal(t, map[string]any{"deployment.environment": "staging"}, cfg.Resource)
	assert.False(t, cfg.DefaultMetrics)
	assert.Equal(t, 5*time.Second, cfg.MetricsFlushInterval)
	assert.Equal(t, TemporalityDelta, cfg.Temporality)
	assert.Equal(t, 30*time.Minute, cfg.SeriesTTL)
	assert.Equal(t, 100, cfg.MaxSeriesPerMetric)
	require.Len(t, cfg.Metrics, 3)
	assert.Equal(t, []float64{10, 50, 100, 250, 500, 1000}, cfg.Metrics[0].Buckets)
	assert.Equal(t, HistogramExponential, cfg.Metrics[1].Histogram)
	assert.Equal(t, 80, cfg.Metrics[1].MaxSize)
	assert.Equal(t, []float64{0.5, 0.99}, cfg.Metrics[2].Quantiles)
	// Telemetry.Metrics' naming convention: event and measurement from the name.
	assert.Equal(t, "anvil.agreement.low_score", cfg.Metrics[2].event())
	assert.Equal(t, "value", cfg.Metrics[2].measurement())
	// default_metrics: false: the user's definitions only.
	assert.Len(t, cfg.effectiveMetrics(), 3)
}

func TestConfigValidationNamesTheKey(t *testing.T) {
	for name, want := range map[string]string{
		"bad_buckets":     "metrics[3].buckets must be strictly increasing",
		"no_type":         "metrics[0].type is required",
		"duplicate":       `metrics[1].name "anvil.x.count" duplicates metrics[0]`,
		"no_event":        "metrics[0].event is required",
		"bad_temporality": `temporality must be "cumulative" or "delta", got "sometimes"`,
		"native_unit":     "native_time_unit must name a unit",
		"bad_quantile":    "metrics[0].quantiles [1] must be within [0, 1], got 1.5",
	} {
		t.Run(name, func(t *testing.T) {
			_, err := loadConfig(t, name)
			require.Error(t, err)
			assert.Contains(t, err.Error(), want)
			assert.ErrorContains(t, err, want)
		})
	}
}

// A metric's type is parsed when the config is read: an unknown one fails
// there, naming the key and the allowed values.
func TestUnknownTypeFailsWhenReadNamingTheKey(t *testing.T) {
	const allowed = "; use one of counter sum last_value summary distribution"
	cm, err := confmaptest.LoadConf(filepath.Join("testdata", "config.yaml"))
	require.NoError(t, err)
	sub, err := cm.Sub(component.NewIDWithName(metadata.Type, "unknown_type").String())
	require.NoError(t, err)
	err = sub.Unmarshal(createDefaultConfig())
	require.Error(t, err)
	assert.Contains(t, err.Error(), `'metrics[0].type' unknown type "gauge"`+allowed)

	conf := confmap.NewFromStringMap(map[string]any{"metrics": []any{
		map[string]any{"name": "anvil.x.count", "type": "counter"},
		map[string]any{"name": "anvil.x.duration", "type": "histogram"},
	}})
	err = conf.Unmarshal(createDefaultConfig())
	require.Error(t, err)
	assert.Contains(t, err.Error(), `'metrics[1].type' unknown type "histogram"`+allowed)

	// Every name reads back as its type, and writes back as its name.
	for want, name := range metricTypeNames {
		if name == "" {
			continue
		}
		cfg := createDefaultConfig().(*Config)
		conf := confmap.NewFromStringMap(map[string]any{"metrics": []any{map[string]any{"name": "anvil.x.v", "type": name}}})
		require.NoError(t, conf.Unmarshal(cfg), name)
		assert.Equal(t, MetricType(want), cfg.Metrics[0].Type, name)
		assert.Equal(t, name, cfg.Metrics[0].Type.String())
		text, err := cfg.Metrics[0].Type.MarshalText()
		require.NoError(t, err)
		assert.Equal(t, name, string(text))
	}
}

func TestUserDefinitionOverridesCatalog(t *testing.T) {
	cfg := createDefaultConfig().(*Config)
	cfg.Metrics = []MetricConfig{
		{Name: "anvil.label.submit.duration", Type: TypeDistribution, Event: "anvil.label.submit.stop",
			Measurement: "duration", Unit: "s", Buckets: []float64{1, 2}},
		{Name: "anvil.custom.count", Type: TypeCounter},
	}
	require.NoError(t, cfg.Validate())
	eff := cfg.effectiveMetrics()
	require.Len(t, eff, len(catalog())+1)
	var found int
	for _, m := range eff {
		if m.Name == "anvil.label.submit.duration" {
			found++
			assert.Equal(t, []float64{1, 2}, m.Buckets)
		}
	}
	assert.Equal(t, 1, found)
	assert.Equal(t, "anvil.custom.count", eff[len(eff)-1].Name)
}

func TestCatalogIsValid(t *testing.T) {
	cfg := createDefaultConfig().(*Config)
	cfg.DefaultMetrics = false
	cfg.Metrics = catalog()
	require.NoError(t, cfg.Validate())
}

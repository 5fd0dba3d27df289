package writebehindprocessor

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/confmap"

	"github.com/anvil/anvilcol/processor/writebehindprocessor/internal/metadata"
)

func TestDefaultConfigNeedsOnlyAStorage(t *testing.T) {
	cfg := NewFactory().CreateDefaultConfig().(*Config)
	require.Equal(t, &Config{MaxInFlight: 1024, MemoryLimitMiB: 2, RetryInterval: time.Second}, cfg)
	require.ErrorContains(t, cfg.Validate(), "storage is required")
	cfg.Storage = component.MustNewID("log_storage")
	require.NoError(t, cfg.Validate())
	require.Equal(t, metadata.Type, NewFactory().Type())
}

func TestConfigFromYAMLAndEveryBadKeyNamed(t *testing.T) {
	cfg := NewFactory().CreateDefaultConfig().(*Config)
	require.NoError(t, confmap.NewFromStringMap(map[string]any{
		"storage": "log_storage/agent", "max_in_flight": 4, "memory_limit_mib": 8, "retry_interval": "250ms",
	}).Unmarshal(cfg))
	require.Equal(t, &Config{Storage: component.MustNewIDWithName("log_storage", "agent"), MaxInFlight: 4, MemoryLimitMiB: 8, RetryInterval: 250 * time.Millisecond}, cfg)
	require.NoError(t, cfg.Validate())

	bad := &Config{Storage: cfg.Storage}
	err := bad.Validate()
	for _, key := range []string{"max_in_flight", "memory_limit_mib", "retry_interval"} {
		require.ErrorContains(t, err, key)
	}
}

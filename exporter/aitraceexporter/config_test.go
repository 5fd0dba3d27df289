package aitraceexporter

import (
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/config/configcompression"

	"github.com/anvil/anvilcol/exporter/aitraceexporter/internal/metadata"
	"github.com/anvil/anvilcol/internal/componenttesthelp"
)

func loadConfig(t *testing.T, name string) (*Config, error) {
	t.Helper()
	cfg := createDefaultConfig().(*Config)
	return cfg, componenttesthelp.LoadConfig(t, component.NewIDWithName(metadata.Type, name), cfg)
}

func TestDefaultsAreTheDocumentedOnes(t *testing.T) {
	cfg, err := loadConfig(t, "")
	if err != nil {
		t.Fatal(err)
	}
	if cfg.ClientConfig.Compression != configcompression.TypeGzip || cfg.ClientConfig.Timeout != 30*time.Second ||
		strings.Join(cfg.ArtifactEvents, ",") != "anvil.export.generate.stop,anvil.export.completed" ||
		cfg.DedupCacheSize != 10000 || cfg.MaxBatchSpans != 1000 ||
		!cfg.QueueConfig.HasValue() || cfg.QueueConfig.Get().StorageID != nil || !cfg.RetryConfig.Enabled {
		t.Errorf("defaults = %+v", cfg)
	}
}

func TestFullConfigLoads(t *testing.T) {
	cfg, err := loadConfig(t, "full")
	if err != nil {
		t.Fatal(err)
	}
	q := cfg.QueueConfig.Get()
	if cfg.DedupCacheSize != 500 || cfg.MaxBatchSpans != 200 || len(cfg.ArtifactEvents) != 2 ||
		!cfg.ClientConfig.Auth.HasValue() || cfg.ClientConfig.Auth.Get().AuthenticatorID.String() != "bearertokenauth/aitrace" ||
		q.StorageID == nil || q.StorageID.String() != "file_storage" {
		t.Errorf("config = %+v", cfg)
	}
}

func TestValidateNamesTheKey(t *testing.T) {
	for name, want := range map[string][]string{
		"no_endpoint": {"`endpoint` is required"},
		"bad_pattern": {"`artifact_events[0]`", "empty segment"},
		"no_events":   {"`artifact_events` must list at least one"},
		"bad_sizes":   {"`dedup_cache_size` must be positive", "`max_batch_spans` must be positive"},
	} {
		_, err := loadConfig(t, name)
		for _, w := range want {
			if err == nil || !strings.Contains(err.Error(), w) {
				t.Errorf("%s: err = %v, want %q", name, err, w)
			}
		}
	}
}

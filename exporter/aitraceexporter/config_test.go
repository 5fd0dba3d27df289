package aitraceexporter

import (
	"strings"
	"testing"

	"github.com/anvil/anvilcol/internal/componenttesthelp"
)

func loadConfig(t *testing.T, name string) (*Config, error) {
	return componenttesthelp.LoadFactoryConfig[*Config](t, NewFactory(), name)
}

func TestDefaultsAreTheDocumentedOnes(t *testing.T) {
	cfg, err := loadConfig(t, "")
	if err != nil {
		t.Fatal(err)
	}
	// The transport defaults are httpexport's (tested there).
	if !componenttesthelp.DefaultTransport(cfg.Config) ||
		strings.Join(cfg.ArtifactEvents, ",") != "anvil.export.generate.stop,anvil.export.completed" ||
		cfg.DedupCacheSize != 10000 || cfg.MaxBatchSpans != 1000 {
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

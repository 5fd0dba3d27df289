package foundationexporter

import (
	"strings"
	"testing"

	"go.opentelemetry.io/collector/config/configcompression"

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
		cfg.MaxBatchPoints != 1000 || cfg.MetricPrefix != "" ||
		strings.Join(cfg.ResourceTags, ",") != "service.name,service.instance.id,host.name,tenant_id" {
		t.Errorf("defaults = %+v", cfg)
	}
}

func TestFullConfigLoads(t *testing.T) {
	cfg, err := loadConfig(t, "full")
	if err != nil {
		t.Fatal(err)
	}
	q := cfg.QueueConfig.Get()
	if cfg.MetricPrefix != "anvil." || cfg.MaxBatchPoints != 500 || len(cfg.ResourceTags) != 3 ||
		cfg.ClientConfig.Compression != configcompression.TypeZstd || cfg.RetryConfig.MaxElapsedTime != 0 ||
		q.StorageID == nil || q.StorageID.String() != "file_storage" || q.NumConsumers != 4 {
		t.Errorf("config = %+v, queue %+v", cfg, q)
	}
}

func TestValidateNamesTheKey(t *testing.T) {
	for name, want := range map[string]string{
		"no_endpoint":  "`endpoint` is required",
		"bad_batch":    "`max_batch_points` must be positive",
		"bad_endpoint": "must be an http:// or https:// URL",
	} {
		_, err := loadConfig(t, name)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: err = %v, want %q", name, err, want)
		}
	}
}

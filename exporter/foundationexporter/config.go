package foundationexporter // import "github.com/anvil/anvilcol/exporter/foundationexporter"

import (
	"errors"
	"fmt"

	"github.com/anvil/anvilcol/internal/httpexport"
)

// Config is the configuration of the foundation exporter.
type Config struct {
	// Config is the HTTP client (endpoint: the base URL; records go to
	// {endpoint}/v1/metrics), the sending queue and the retry, with the
	// defaults httpexport documents.
	httpexport.Config `mapstructure:",squash"`

	// MetricPrefix is prepended verbatim to every metric name (default "", no
	// prefix); include the separator, e.g. "anvil.".
	MetricPrefix string `mapstructure:"metric_prefix"`
	// ResourceTags lists the resource attributes copied into every record's
	// tags (default [service.name, service.instance.id, host.name, tenant_id]:
	// with the writer identity, two nodes never share a series). A data point
	// attribute of the same name takes precedence.
	ResourceTags []string `mapstructure:"resource_tags"`
	// MaxBatchPoints is the maximum number of records per request (default 1000).
	MaxBatchPoints int `mapstructure:"max_batch_points"`

	// prevent unkeyed literal initialization
	_ struct{}
}

// Validate checks the configuration.
func (cfg *Config) Validate() error {
	var errs []error
	if err := cfg.CheckEndpoint("Foundation", "https://foundation.internal"); err != nil {
		errs = append(errs, err)
	}
	if cfg.MaxBatchPoints <= 0 {
		errs = append(errs, fmt.Errorf("`max_batch_points` must be positive, got %d", cfg.MaxBatchPoints))
	}
	for i, k := range cfg.ResourceTags {
		if k == "" {
			errs = append(errs, fmt.Errorf("`resource_tags[%d]` must not be empty", i))
		}
	}
	return errors.Join(errs...)
}

package foundationexporter // import "github.com/anvil/anvilcol/exporter/foundationexporter"

import (
	"context"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/exporter"
	"go.opentelemetry.io/collector/exporter/exporterhelper"

	"github.com/anvil/anvilcol/exporter/foundationexporter/internal/metadata"
	"github.com/anvil/anvilcol/internal/httpexport"
)

const (
	defaultMaxBatchPoints = 1000
	metricsPath           = "/v1/metrics"
)

// NewFactory returns the factory of the foundation exporter.
func NewFactory() exporter.Factory {
	return exporter.NewFactory(
		metadata.Type,
		createDefaultConfig,
		exporter.WithMetrics(createMetrics, metadata.MetricsStability),
	)
}

func createDefaultConfig() component.Config {
	return &Config{
		Config:         httpexport.NewDefaultConfig(),
		ResourceTags:   []string{"service.name", "service.instance.id", "host.name", "tenant_id"},
		MaxBatchPoints: defaultMaxBatchPoints,
	}
}

func createMetrics(ctx context.Context, set exporter.Settings, cfg component.Config) (exporter.Metrics, error) {
	c := cfg.(*Config)
	exp, err := newFoundationExporter(c, set)
	if err != nil {
		return nil, err
	}
	return exporterhelper.NewMetrics(ctx, set, cfg, exp.pushMetrics, c.Options(exp.start, exp.shutdown)...)
}

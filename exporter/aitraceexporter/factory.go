package aitraceexporter // import "github.com/anvil/anvilcol/exporter/aitraceexporter"

import (
	"context"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/exporter"
	"go.opentelemetry.io/collector/exporter/exporterhelper"

	"github.com/anvil/anvilcol/exporter/aitraceexporter/internal/metadata"
	"github.com/anvil/anvilcol/internal/httpexport"
)

const (
	artifactsPath = "/v1/artifacts"
	tracesPath    = "/v1/traces"

	defaultDedupCacheSize = 10000
	defaultMaxBatchSpans  = 1000
)

// NewFactory returns the factory of the aitrace exporter.
func NewFactory() exporter.Factory {
	return exporter.NewFactory(
		metadata.Type,
		createDefaultConfig,
		exporter.WithLogs(createLogs, metadata.LogsStability),
		exporter.WithTraces(createTraces, metadata.TracesStability),
	)
}

func createDefaultConfig() component.Config {
	return &Config{
		Config:         httpexport.NewDefaultConfig(),
		ArtifactEvents: []string{"anvil.export.generate.stop", "anvil.export.completed"},
		DedupCacheSize: defaultDedupCacheSize,
		MaxBatchSpans:  defaultMaxBatchSpans,
	}
}

func createLogs(ctx context.Context, set exporter.Settings, cfg component.Config) (exporter.Logs, error) {
	c := cfg.(*Config)
	exp, err := newAITraceExporter(c, set)
	if err != nil {
		return nil, err
	}
	return exporterhelper.NewLogs(ctx, set, cfg, exp.pushLogs, c.Options(exp.start, exp.shutdown)...)
}

func createTraces(ctx context.Context, set exporter.Settings, cfg component.Config) (exporter.Traces, error) {
	c := cfg.(*Config)
	exp, err := newAITraceExporter(c, set)
	if err != nil {
		return nil, err
	}
	return exporterhelper.NewTraces(ctx, set, cfg, exp.pushTraces, c.Options(exp.start, exp.shutdown)...)
}

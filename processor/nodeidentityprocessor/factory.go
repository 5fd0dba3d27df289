package nodeidentityprocessor // import "github.com/anvil/anvilcol/processor/nodeidentityprocessor"

import (
	"context"
	"os"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/processor"
	"go.opentelemetry.io/collector/processor/processorhelper"

	"github.com/anvil/anvilcol/processor/nodeidentityprocessor/internal/metadata"
)

// NewFactory returns the factory of the `node_identity` processor (all
// three signals).
func NewFactory() processor.Factory {
	return processor.NewFactory(
		metadata.Type,
		createDefaultConfig,
		processor.WithLogs(createLogs, metadata.LogsStability),
		processor.WithMetrics(createMetrics, metadata.MetricsStability),
		processor.WithTraces(createTraces, metadata.TracesStability),
	)
}

func createDefaultConfig() component.Config {
	return &Config{ServiceName: "anvil"}
}

var capabilities = consumer.Capabilities{MutatesData: true}

func createLogs(ctx context.Context, set processor.Settings, cfg component.Config, next consumer.Logs) (processor.Logs, error) {
	id, err := newIdentity(cfg.(*Config), os.Hostname)
	if err != nil {
		return nil, err
	}
	return processorhelper.NewLogs(ctx, set, cfg, next, id.processLogs, processorhelper.WithCapabilities(capabilities))
}

func createMetrics(ctx context.Context, set processor.Settings, cfg component.Config, next consumer.Metrics) (processor.Metrics, error) {
	id, err := newIdentity(cfg.(*Config), os.Hostname)
	if err != nil {
		return nil, err
	}
	return processorhelper.NewMetrics(ctx, set, cfg, next, id.processMetrics, processorhelper.WithCapabilities(capabilities))
}

func createTraces(ctx context.Context, set processor.Settings, cfg component.Config, next consumer.Traces) (processor.Traces, error) {
	id, err := newIdentity(cfg.(*Config), os.Hostname)
	if err != nil {
		return nil, err
	}
	return processorhelper.NewTraces(ctx, set, cfg, next, id.processTraces, processorhelper.WithCapabilities(capabilities))
}

package alertprocessor // import "github.com/anvil/anvilcol/processor/alertprocessor"

import (
	"context"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/processor"
	"go.opentelemetry.io/collector/processor/processorhelper"

	"github.com/anvil/anvilcol/processor/alertprocessor/internal/metadata"
)

// NewFactory returns the factory of the alert processor.
func NewFactory() processor.Factory {
	return processor.NewFactory(
		metadata.Type,
		createDefaultConfig,
		processor.WithMetrics(createMetrics, metadata.MetricsStability),
		processor.WithLogs(createLogs, metadata.LogsStability),
		processor.WithTraces(createTraces, metadata.TracesStability),
	)
}

func createDefaultConfig() component.Config {
	return &Config{
		EvaluationInterval: 15 * time.Second,
		RepeatInterval:     4 * time.Hour,
		SendResolved:       true,
		MaxGroups:          1000,
	}
}

var passThrough = processorhelper.WithCapabilities(consumer.Capabilities{MutatesData: false})

func createMetrics(ctx context.Context, set processor.Settings, cfg component.Config, next consumer.Metrics) (processor.Metrics, error) {
	p, err := acquire(set, cfg.(*Config), wallClock{})
	if err != nil {
		return nil, err
	}
	return processorhelper.NewMetrics(ctx, set, cfg, next, p.processMetrics, passThrough,
		processorhelper.WithStart(p.Start), processorhelper.WithShutdown(p.Shutdown))
}

func createLogs(ctx context.Context, set processor.Settings, cfg component.Config, next consumer.Logs) (processor.Logs, error) {
	p, err := acquire(set, cfg.(*Config), wallClock{})
	if err != nil {
		return nil, err
	}
	return processorhelper.NewLogs(ctx, set, cfg, next, p.processLogs, passThrough,
		processorhelper.WithStart(p.Start), processorhelper.WithShutdown(p.Shutdown))
}

func createTraces(ctx context.Context, set processor.Settings, cfg component.Config, next consumer.Traces) (processor.Traces, error) {
	p, err := acquire(set, cfg.(*Config), wallClock{})
	if err != nil {
		return nil, err
	}
	return processorhelper.NewTraces(ctx, set, cfg, next, p.processTraces, passThrough,
		processorhelper.WithStart(p.Start), processorhelper.WithShutdown(p.Shutdown))
}

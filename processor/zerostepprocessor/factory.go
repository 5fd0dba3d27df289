package zerostepprocessor // import "github.com/anvil/anvilcol/processor/zerostepprocessor"

import (
	"context"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/processor"
	"go.opentelemetry.io/collector/processor/processorhelper"

	"github.com/anvil/anvilcol/internal/clock"
	"github.com/anvil/anvilcol/processor/zerostepprocessor/internal/metadata"
)

// NewFactory returns the factory of the `zero_step` processor (metrics).
func NewFactory() processor.Factory {
	return processor.NewFactory(
		metadata.Type,
		createDefaultConfig,
		processor.WithMetrics(createMetrics, metadata.MetricsStability),
	)
}

func createDefaultConfig() component.Config {
	return &Config{Hold: 35 * time.Second, MaxAge: 2 * time.Minute, SeriesTTL: time.Hour, MaxSeries: 200_000}
}

func createMetrics(ctx context.Context, set processor.Settings, cfg component.Config, next consumer.Metrics) (processor.Metrics, error) {
	z := newZeroStep(cfg.(*Config), next, set.Logger, clock.Real{})
	return processorhelper.NewMetrics(ctx, set, cfg, next, z.process,
		processorhelper.WithCapabilities(consumer.Capabilities{MutatesData: true}),
		processorhelper.WithStart(z.start), processorhelper.WithShutdown(z.shutdown))
}

package cardinalityguardprocessor // import "github.com/anvil/anvilcol/processor/cardinalityguardprocessor"

import (
	"context"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/processor"
	"go.opentelemetry.io/collector/processor/processorhelper"

	"github.com/anvil/anvilcol/internal/clock"
	"github.com/anvil/anvilcol/processor/cardinalityguardprocessor/internal/metadata"
)

// Defaults (see Config).
const (
	defaultMaxSeriesPerMetric = 2000
	defaultSeriesTTL          = time.Hour
)

// defaultDropAttributes is ADR-008's high-cardinality class.
func defaultDropAttributes() []string {
	return []string{"labeler_id", "sample_id", "assignment_id"}
}

// NewFactory returns the factory of the cardinality_guard processor.
func NewFactory() processor.Factory {
	return processor.NewFactory(
		metadata.Type,
		createDefaultConfig,
		processor.WithMetrics(createMetrics, metadata.MetricsStability),
	)
}

func createDefaultConfig() component.Config {
	return &Config{
		DropAttributes:     defaultDropAttributes(),
		MaxSeriesPerMetric: defaultMaxSeriesPerMetric,
		SeriesTTL:          defaultSeriesTTL,
	}
}

func createMetrics(ctx context.Context, set processor.Settings, cfg component.Config, next consumer.Metrics) (processor.Metrics, error) {
	g, err := newGuard(set.TelemetrySettings, cfg.(*Config), clock.Real{})
	if err != nil {
		return nil, err
	}
	return processorhelper.NewMetrics(ctx, set, cfg, next, g.processMetrics,
		processorhelper.WithCapabilities(consumer.Capabilities{MutatesData: true}),
		processorhelper.WithShutdown(g.shutdown))
}

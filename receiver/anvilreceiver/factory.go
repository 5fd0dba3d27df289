package anvilreceiver // import "github.com/anvil/anvilcol/receiver/anvilreceiver"

import (
	"context"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/config/confighttp"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/receiver"

	"github.com/anvil/anvilcol/receiver/anvilreceiver/internal/metadata"
)

// NewFactory returns the factory of the anvil receiver.
func NewFactory() receiver.Factory {
	return receiver.NewFactory(
		metadata.Type,
		createDefaultConfig,
		receiver.WithLogs(createLogs, metadata.LogsStability),
		receiver.WithMetrics(createMetrics, metadata.MetricsStability),
		receiver.WithTraces(createTraces, metadata.TracesStability),
	)
}

func createDefaultConfig() component.Config {
	srv := confighttp.NewDefaultServerConfig()
	srv.NetAddr.Endpoint = defaultEndpoint
	return &Config{
		ServerConfig:         srv,
		NativeTimeUnit:       defaultNativeTimeUnit,
		MaxEventsPerRequest:  defaultMaxEventsPerRequest,
		DefaultMetrics:       true,
		MetricsFlushInterval: defaultFlushInterval,
		Temporality:          TemporalityCumulative,
		SeriesTTL:            defaultSeriesTTL,
		MaxSeriesPerMetric:   defaultMaxSeriesPerMetric,
	}
}

func createLogs(_ context.Context, set receiver.Settings, cfg component.Config, next consumer.Logs) (receiver.Logs, error) {
	r, err := loadOrStore(cfg.(*Config), set)
	if err != nil {
		return nil, err
	}
	r.Unwrap().nextLogs = next
	return r, nil
}

func createMetrics(_ context.Context, set receiver.Settings, cfg component.Config, next consumer.Metrics) (receiver.Metrics, error) {
	r, err := loadOrStore(cfg.(*Config), set)
	if err != nil {
		return nil, err
	}
	r.Unwrap().nextMetrics = next
	return r, nil
}

func createTraces(_ context.Context, set receiver.Settings, cfg component.Config, next consumer.Traces) (receiver.Traces, error) {
	r, err := loadOrStore(cfg.(*Config), set)
	if err != nil {
		return nil, err
	}
	r.Unwrap().nextTraces = next
	return r, nil
}

package writebehindprocessor // import "github.com/anvil/anvilcol/processor/writebehindprocessor"

import (
	"context"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/processor"

	"github.com/anvil/anvilcol/processor/writebehindprocessor/internal/metadata"
)

// NewFactory returns the factory of the `write_behind` processor (logs, traces).
func NewFactory() processor.Factory {
	return processor.NewFactory(
		metadata.Type,
		createDefaultConfig,
		processor.WithLogs(createLogs, metadata.LogsStability),
		processor.WithTraces(createTraces, metadata.TracesStability),
	)
}

func createDefaultConfig() component.Config {
	return &Config{MaxInFlight: 1024, MemoryLimitMiB: 2, RetryInterval: time.Second}
}

func createLogs(_ context.Context, set processor.Settings, cfg component.Config, next consumer.Logs) (processor.Logs, error) {
	c := codec[plog.Logs]{
		signal:    "logs",
		marshal:   (&plog.ProtoMarshaler{}).MarshalLogs,
		unmarshal: (&plog.ProtoUnmarshaler{}).UnmarshalLogs,
		consume:   next.ConsumeLogs,
		count:     plog.Logs.LogRecordCount,
	}
	return &logsProcessor{newWriteBehind(cfg.(*Config), set, c)}, nil
}

func createTraces(_ context.Context, set processor.Settings, cfg component.Config, next consumer.Traces) (processor.Traces, error) {
	c := codec[ptrace.Traces]{
		signal:    "traces",
		marshal:   (&ptrace.ProtoMarshaler{}).MarshalTraces,
		unmarshal: (&ptrace.ProtoUnmarshaler{}).UnmarshalTraces,
		consume:   next.ConsumeTraces,
		count:     ptrace.Traces.SpanCount,
	}
	return &tracesProcessor{newWriteBehind(cfg.(*Config), set, c)}, nil
}

type logsProcessor struct{ *writeBehind[plog.Logs] }

func (p *logsProcessor) ConsumeLogs(ctx context.Context, ld plog.Logs) error {
	return p.consume(ctx, ld)
}

type tracesProcessor struct{ *writeBehind[ptrace.Traces] }

func (p *tracesProcessor) ConsumeTraces(ctx context.Context, td ptrace.Traces) error {
	return p.consume(ctx, td)
}

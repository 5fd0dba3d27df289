package foundationexporter // import "github.com/anvil/anvilcol/exporter/foundationexporter"

import (
	"context"
	"fmt"
	"runtime"
	"strings"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/consumer/consumererror"
	"go.opentelemetry.io/collector/exporter"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.uber.org/zap"

	"github.com/anvil/anvilcol/exporter/foundationexporter/internal/metadata"
	"github.com/anvil/anvilcol/internal/jsonpost"
	"github.com/anvil/anvilcol/internal/ratelog"
)

type foundationExporter struct {
	cfg      *Config
	settings component.TelemetrySettings
	url      string
	enc      encoder
	client   *jsonpost.Client
	tel      *metadata.TelemetryBuilder
	log      *ratelog.Logger
	// bytesPerPoint is the encoded size of a record seen last, to size buffers.
	bytesPerPoint atomic.Int64

	outcomeAttrs   map[jsonpost.Outcome]metric.MeasurementOption
	droppedInvalid metric.MeasurementOption
	droppedReject  metric.MeasurementOption
}

func newFoundationExporter(cfg *Config, set exporter.Settings) (*foundationExporter, error) {
	tel, err := metadata.NewTelemetryBuilder(set.TelemetrySettings)
	if err != nil {
		return nil, fmt.Errorf("foundation: creating telemetry: %w", err)
	}
	e := &foundationExporter{
		cfg:            cfg,
		settings:       set.TelemetrySettings,
		url:            strings.TrimSuffix(cfg.ClientConfig.Endpoint, "/") + metricsPath,
		enc:            encoder{prefix: cfg.MetricPrefix, resourceTags: cfg.ResourceTags, now: time.Now},
		tel:            tel,
		log:            ratelog.New(set.Logger, ratelog.DefaultInterval),
		outcomeAttrs:   map[jsonpost.Outcome]metric.MeasurementOption{},
		droppedInvalid: metric.WithAttributeSet(attribute.NewSet(attribute.String("reason", "invalid"))),
		droppedReject:  metric.WithAttributeSet(attribute.NewSet(attribute.String("reason", "rejected"))),
	}
	for _, o := range []jsonpost.Outcome{jsonpost.OutcomeSuccess, jsonpost.OutcomeRetryable, jsonpost.OutcomeTooLarge, jsonpost.OutcomeRejected, jsonpost.OutcomeNetworkError} {
		e.outcomeAttrs[o] = metric.WithAttributeSet(attribute.NewSet(attribute.String("outcome", string(o))))
	}
	e.client = &jsonpost.Client{
		UserAgent: fmt.Sprintf("%s/%s (%s/%s)", set.BuildInfo.Command, set.BuildInfo.Version, runtime.GOOS, runtime.GOARCH),
		Observe: func(ctx context.Context, o jsonpost.Outcome, _ int) {
			e.tel.FoundationRequests.Add(ctx, 1, e.outcomeAttrs[o])
		},
	}
	return e, nil
}

// start builds the HTTP client; it needs the host's extensions for `auth`.
func (e *foundationExporter) start(ctx context.Context, host component.Host) error {
	client, err := e.cfg.ClientConfig.ToClient(ctx, host.GetExtensions(), e.settings)
	if err != nil {
		return fmt.Errorf("foundation: building the HTTP client: %w", err)
	}
	e.client.HTTP = client
	return nil
}

func (e *foundationExporter) shutdown(context.Context) error {
	e.tel.Shutdown()
	return nil
}

func (e *foundationExporter) pushMetrics(ctx context.Context, md pmetric.Metrics) error {
	// A new buffer per push: the request body may be buf itself, which the
	// HTTP transport can still be reading after the request returned.
	b := newBatch(md.DataPointCount(), int(e.bytesPerPoint.Load()))
	e.enc.encode(md, b)
	if n := b.len(); n > 0 {
		e.bytesPerPoint.Store(int64(len(b.buf)/n + 1))
	}
	if b.invalid > 0 {
		e.tel.FoundationRecordsDropped.Add(ctx, int64(b.invalid), e.droppedInvalid)
		e.log.Warn("invalid", "Dropped data points that have no JSON representation (NaN or infinite value, no recorded value, or bucket counts that do not match the bounds)",
			zap.Int("dropped", b.invalid), zap.String("first_metric", b.firstInvalid))
	}
	if b.len() == 0 {
		return nil
	}
	res := e.client.Send(ctx, e.url, nil, b.len(), e.cfg.MaxBatchPoints, func(lo, hi int) ([]byte, error) {
		return b.body(lo, hi), nil
	})
	if res.Delivered > 0 {
		e.tel.FoundationRecordsSent.Add(ctx, int64(res.Delivered))
	}
	if res.Rejected > 0 {
		e.tel.FoundationRecordsDropped.Add(ctx, int64(res.Rejected), e.droppedReject)
		e.log.Error("rejected", "Foundation refused records permanently; they are dropped",
			zap.Int("dropped", res.Rejected), zap.Int("status", jsonpost.StatusCode(res.Rejection)),
			zap.String("response_body", jsonpost.BodyExcerpt(res.Rejection)), zap.Error(res.Rejection))
	}
	if res.Err != nil {
		if res.Resume > 0 {
			// Retry only what Foundation has not acknowledged yet.
			return consumererror.NewMetrics(res.Err, pointsFrom(md, b.ords[res.Resume]))
		}
		return res.Err
	}
	return res.PermanentError()
}

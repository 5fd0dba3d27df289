package aitraceexporter // import "github.com/anvil/anvilcol/exporter/aitraceexporter"

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"runtime"
	"strings"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/consumer/consumererror"
	"go.opentelemetry.io/collector/exporter"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.uber.org/zap"

	"github.com/anvil/anvilcol/exporter/aitraceexporter/internal/metadata"
	"github.com/anvil/anvilcol/internal/event"
	"github.com/anvil/anvilcol/internal/eventmatch"
	"github.com/anvil/anvilcol/internal/jsonpost"
	"github.com/anvil/anvilcol/internal/ratelog"
)

type aitraceExporter struct {
	cfg          *Config
	settings     component.TelemetrySettings
	artifactsURL string
	tracesURL    string
	artifactIx   *eventmatch.Index // one rule: artifact_events
	recent       *recentSet
	artifacts    *jsonpost.Client
	traces       *jsonpost.Client
	tel          *metadata.TelemetryBuilder
	log          *ratelog.Logger

	reasonAttrs map[string]metric.MeasurementOption
}

func newAITraceExporter(cfg *Config, set exporter.Settings) (*aitraceExporter, error) {
	m, err := eventmatch.New(cfg.ArtifactEvents)
	if err != nil {
		return nil, fmt.Errorf("aitrace: `artifact_events`%w", err)
	}
	tel, err := metadata.NewTelemetryBuilder(set.TelemetrySettings)
	if err != nil {
		return nil, fmt.Errorf("aitrace: creating telemetry: %w", err)
	}
	base := strings.TrimSuffix(cfg.ClientConfig.Endpoint, "/")
	e := &aitraceExporter{
		cfg:          cfg,
		settings:     set.TelemetrySettings,
		artifactsURL: base + artifactsPath,
		tracesURL:    base + tracesPath,
		artifactIx:   eventmatch.NewIndex([]*eventmatch.Matcher{m}),
		recent:       newRecentSet(cfg.DedupCacheSize),
		tel:          tel,
		log:          ratelog.New(set.Logger, ratelog.DefaultInterval),
		reasonAttrs:  map[string]metric.MeasurementOption{},
	}
	for _, r := range []string{reasonMissingExportID, reasonMissingQueueID, reasonRejected} {
		e.reasonAttrs[r] = metric.WithAttributeSet(attribute.NewSet(attribute.String("reason", r)))
	}
	userAgent := fmt.Sprintf("%s/%s (%s/%s)", set.BuildInfo.Command, set.BuildInfo.Version, runtime.GOOS, runtime.GOARCH)
	e.artifacts = &jsonpost.Client{UserAgent: userAgent, Observe: e.observer("artifacts")}
	e.traces = &jsonpost.Client{UserAgent: userAgent, Observe: e.observer("traces")}
	return e, nil
}

// observer counts requests to one API by outcome.
func (e *aitraceExporter) observer(api string) func(context.Context, jsonpost.Outcome, int) {
	attrs := map[jsonpost.Outcome]metric.MeasurementOption{}
	for _, o := range []jsonpost.Outcome{jsonpost.OutcomeSuccess, jsonpost.OutcomeRetryable, jsonpost.OutcomeTooLarge, jsonpost.OutcomeRejected, jsonpost.OutcomeNetworkError} {
		attrs[o] = metric.WithAttributeSet(attribute.NewSet(attribute.String("api", api), attribute.String("outcome", string(o))))
	}
	return func(ctx context.Context, o jsonpost.Outcome, _ int) {
		e.tel.AitraceRequests.Add(ctx, 1, attrs[o])
	}
}

// start builds the HTTP client; it needs the host's extensions for `auth`.
func (e *aitraceExporter) start(ctx context.Context, host component.Host) error {
	client, err := e.cfg.ClientConfig.ToClient(ctx, host.GetExtensions(), e.settings)
	if err != nil {
		return fmt.Errorf("aitrace: building the HTTP client: %w", err)
	}
	e.artifacts.HTTP, e.traces.HTTP = client, client
	return nil
}

func (e *aitraceExporter) shutdown(context.Context) error {
	e.tel.Shutdown()
	return nil
}

// pendingArtifact is an artifact to register and the walk-order ordinal of
// the log record it came from.
type pendingArtifact struct {
	a   *artifact
	ord int
}

func (e *aitraceExporter) pushLogs(ctx context.Context, ld plog.Logs) error {
	var todo []pendingArtifact
	var ignored, duplicate int64
	ord := 0
	memo := e.artifactIx.Memo()
	rls := ld.ResourceLogs()
	for i := 0; i < rls.Len(); i++ {
		sls := rls.At(i).ScopeLogs()
		for j := 0; j < sls.Len(); j++ {
			lrs := sls.At(j).LogRecords()
			for k := 0; k < lrs.Len(); k, ord = k+1, ord+1 {
				lr := lrs.At(k)
				sel := memo.Select(event.LogKey(lr))
				if len(sel.Rules) == 0 {
					ignored++
					continue
				}
				name := sel.Event
				a, reason := toArtifact(lr)
				if reason != "" {
					e.tel.AitraceLogRecordsDropped.Add(ctx, 1, e.reasonAttrs[reason])
					e.log.Warn(reason, "Dropped an artifact event that cannot register an artifact",
						zap.String("reason", reason), zap.String("event", name))
					continue
				}
				if !e.recent.claim(a.Metadata.ExportID) {
					duplicate++
					continue
				}
				todo = append(todo, pendingArtifact{a: a, ord: ord})
			}
		}
	}
	if ignored > 0 {
		e.tel.AitraceLogRecordsIgnored.Add(ctx, ignored)
	}
	if duplicate > 0 {
		e.tel.AitraceArtifactsDuplicate.Add(ctx, duplicate)
	}

	var rejected jsonpost.Result
	for i, p := range todo {
		body, err := json.Marshal(p.a)
		res := e.artifacts.Send(ctx, e.artifactsURL, http.Header{"Idempotency-Key": {p.a.Metadata.ExportID}}, 1, 1,
			func(int, int) ([]byte, error) { return body, err })
		e.recent.release(p.a.Metadata.ExportID, res.Delivered == 1)
		if res.Delivered == 1 {
			e.tel.AitraceArtifactsRegistered.Add(ctx, 1)
		}
		if res.Rejected == 1 {
			rejected.Rejected++
			rejected.Rejection = res.Rejection
			e.tel.AitraceLogRecordsDropped.Add(ctx, 1, e.reasonAttrs[reasonRejected])
			e.log.Error("rejected_artifact", "AITrace refused an artifact permanently; it is dropped",
				zap.String("export_id", p.a.Metadata.ExportID), zap.Int("status", jsonpost.StatusCode(res.Rejection)),
				zap.String("response_body", jsonpost.BodyExcerpt(res.Rejection)), zap.Error(res.Rejection))
		}
		if res.Err != nil {
			// Retry only the artifacts not registered yet.
			keep := make(map[int]bool, len(todo)-i)
			for _, q := range todo[i:] {
				keep[q.ord] = true
			}
			for _, q := range todo[i+1:] {
				e.recent.release(q.a.Metadata.ExportID, false)
			}
			return consumererror.NewLogs(res.Err, recordsFrom(ld, keep))
		}
	}
	return rejected.PermanentError()
}

func (e *aitraceExporter) pushTraces(ctx context.Context, td ptrace.Traces) error {
	set := newSpanSet(td)
	if len(set.spans) == 0 {
		return nil
	}
	res := e.traces.Send(ctx, e.tracesURL, nil, len(set.spans), e.cfg.MaxBatchSpans, set.body)
	if res.Delivered > 0 {
		e.tel.AitraceSpansSent.Add(ctx, int64(res.Delivered))
	}
	if res.Rejected > 0 {
		e.tel.AitraceSpansDropped.Add(ctx, int64(res.Rejected), e.reasonAttrs[reasonRejected])
		e.log.Error("rejected_spans", "AITrace refused spans permanently; they are dropped",
			zap.Int("dropped", res.Rejected), zap.Int("status", jsonpost.StatusCode(res.Rejection)),
			zap.String("response_body", jsonpost.BodyExcerpt(res.Rejection)), zap.Error(res.Rejection))
	}
	if res.Err != nil {
		if res.Resume == 0 {
			return res.Err
		}
		// Retry only the spans AITrace has not acknowledged yet.
		keep := make(map[int]bool, len(set.spans)-res.Resume)
		for _, o := range set.ords[res.Resume:] {
			keep[o] = true
		}
		return consumererror.NewTraces(res.Err, spansFrom(td, keep))
	}
	return res.PermanentError()
}

// recordsFrom returns a copy of ld holding only the log records whose
// walk-order ordinal is in keep.
func recordsFrom(ld plog.Logs, keep map[int]bool) plog.Logs {
	out := plog.NewLogs()
	ld.CopyTo(out)
	ord := 0
	out.ResourceLogs().RemoveIf(func(rl plog.ResourceLogs) bool {
		rl.ScopeLogs().RemoveIf(func(sl plog.ScopeLogs) bool {
			sl.LogRecords().RemoveIf(func(plog.LogRecord) bool {
				k := keep[ord]
				ord++
				return !k
			})
			return sl.LogRecords().Len() == 0
		})
		return rl.ScopeLogs().Len() == 0
	})
	return out
}

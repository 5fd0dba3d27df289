package anvilreceiver // import "github.com/anvil/anvilcol/receiver/anvilreceiver"

import (
	"context"
	"errors"
	"net"
	"net/http"
	"sync"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componentstatus"
	"go.opentelemetry.io/collector/config/confighttp"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/receiver"
	"go.opentelemetry.io/collector/receiver/receiverhelper"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.uber.org/zap"

	"github.com/anvil/anvilcol/internal/clock"
	"github.com/anvil/anvilcol/internal/metricstate"
	"github.com/anvil/anvilcol/internal/ratelog"
	"github.com/anvil/anvilcol/internal/timeunit"
	"github.com/anvil/anvilcol/receiver/anvilreceiver/internal/metadata"
)

// EventsPath is the v1 endpoint's URL path.
const EventsPath = "/v1/events"

// dataFormat is the obsreport format of this receiver's requests.
const dataFormat = "anvil_json"

// anvilReceiver is one HTTP server shared by the logs, metrics and traces
// pipelines that use the same receiver config.
type anvilReceiver struct {
	cfg      *Config
	set      receiver.Settings
	native   timeunit.Unit
	resource pcommon.Map // the config's resource, service.name defaulted
	clk      clock.Clock
	agg      *aggregator

	nextLogs    consumer.Logs
	nextMetrics consumer.Metrics
	nextTraces  consumer.Traces

	obsrep    *receiverhelper.ObsReport
	telemetry *metadata.TelemetryBuilder
	errlog    *ratelog.Logger
	scratch   *freeList[*requestScratch]
	// missingOpts are the attributes (event, attribute) of
	// receiver_anvil_events_missing_attribute, by the aggregator's slot:
	// built once, not per request.
	missingOpts []metric.AddOption

	server     *http.Server
	addr       net.Addr // the listener's address, once started
	stopFlush  chan struct{}
	shutdownWG sync.WaitGroup
}

func newAnvilReceiver(cfg *Config, set receiver.Settings, clk clock.Clock) (*anvilReceiver, error) {
	native, err := timeunit.Parse(cfg.NativeTimeUnit)
	if err != nil {
		return nil, err
	}
	res := pcommon.NewMap()
	if err = res.FromRaw(cfg.Resource); err != nil {
		return nil, err
	}
	if _, ok := res.Get("service.name"); !ok {
		res.PutStr("service.name", defaultServiceName)
	}
	obsrep, err := receiverhelper.NewObsReport(receiverhelper.ObsReportSettings{
		ReceiverID: set.ID, Transport: "http", ReceiverCreateSettings: set,
	})
	if err != nil {
		return nil, err
	}
	tb, err := metadata.NewTelemetryBuilder(set.TelemetrySettings)
	if err != nil {
		return nil, err
	}
	r := &anvilReceiver{
		cfg: cfg, set: set, native: native, resource: res, clk: clk,
		obsrep: obsrep, telemetry: tb, errlog: ratelog.New(set.Logger, 0),
	}
	r.agg = newAggregator(newMetricDefs(cfg.effectiveMetrics()), native,
		cfg.Temporality == TemporalityDelta, cfg.SeriesTTL, cfg.MaxSeriesPerMetric, r.clk.Now())
	r.agg.onOverflow = func(name string) {
		tb.ReceiverAnvilMetricPointsOverflowed.Add(context.Background(), 1, metric.WithAttributes(attribute.String("metric", name)))
	}
	r.missingOpts = make([]metric.AddOption, len(r.agg.missing))
	for i, k := range r.agg.missing {
		r.missingOpts[i] = metric.WithAttributeSet(attribute.NewSet(
			attribute.String("event", k.event), attribute.String("attribute", k.attribute)))
	}
	if err = tb.RegisterReceiverAnvilMetricSeriesCallback(func(_ context.Context, o metric.Int64Observer) error {
		o.Observe(r.agg.seriesCount())
		return nil
	}); err != nil {
		return nil, err
	}
	r.scratch = newFreeList(func() *requestScratch { return &requestScratch{dec: newDecoder(cfg.MaxEventsPerRequest)} })
	return r, nil
}

// Start starts the HTTP server and, for a metrics pipeline, the flush loop.
func (r *anvilReceiver) Start(ctx context.Context, host component.Host) error {
	mux := http.NewServeMux()
	mux.HandleFunc(EventsPath, r.handleEvents)
	var err error
	r.server, err = r.cfg.ServerConfig.ToServer(ctx, host.GetExtensions(), r.set.TelemetrySettings, mux,
		confighttp.WithErrorHandler(errorHandler))
	if err != nil {
		return err
	}
	var ln net.Listener
	if ln, err = r.cfg.ServerConfig.ToListener(ctx); err != nil {
		return err
	}
	r.addr = ln.Addr()
	r.set.Logger.Info("Starting HTTP server", zap.String("endpoint", ln.Addr().String()), zap.String("path", EventsPath))
	r.shutdownWG.Go(func() {
		if errHTTP := r.server.Serve(ln); errHTTP != nil && !errors.Is(errHTTP, http.ErrServerClosed) {
			componentstatus.ReportStatus(host, componentstatus.NewFatalErrorEvent(errHTTP))
		}
	})
	if r.nextMetrics != nil {
		r.stopFlush = make(chan struct{})
		r.shutdownWG.Go(r.flushLoop)
	}
	return nil
}

// Shutdown stops the server, then flushes the metrics one last time.
func (r *anvilReceiver) Shutdown(ctx context.Context) error {
	var err error
	if r.server != nil {
		err = r.server.Shutdown(ctx)
	}
	if r.stopFlush != nil {
		close(r.stopFlush)
	}
	r.shutdownWG.Wait()
	if r.stopFlush != nil {
		r.flush(ctx)
	}
	r.telemetry.Shutdown()
	return err
}

func (r *anvilReceiver) flushLoop() {
	t := r.clk.NewTicker(r.cfg.MetricsFlushInterval)
	defer t.Stop()
	for {
		select {
		case <-r.stopFlush:
			return
		case <-t.C():
			r.flush(context.Background())
		}
	}
}

// flush sends the aggregated metrics on. A refused flush is counted by
// obsreport; cumulative state carries it into the next flush.
func (r *anvilReceiver) flush(ctx context.Context) {
	md := r.agg.flush(r.clk.Now(), func(sm pmetric.ScopeMetrics) { r.scope(sm.Scope()) })
	n := md.DataPointCount()
	if n == 0 {
		return
	}
	ctx = r.obsrep.StartMetricsOp(ctx)
	err := r.nextMetrics.ConsumeMetrics(ctx, md)
	r.obsrep.EndMetricsOp(ctx, dataFormat, n, err)
	if err != nil {
		r.errlog.Error("flush", "Metrics flush refused by the next consumer", zap.Error(err), zap.Int("data_points", n))
	}
}

func (r *anvilReceiver) scope(s pcommon.InstrumentationScope) {
	s.SetName(metadata.ScopeName)
	s.SetVersion(r.set.BuildInfo.Version)
}

// requestScratch is the per-request working memory, pooled.
type requestScratch struct {
	dec   *decoder
	batch batch
	stage stage
	ids   []ids
}

// requestResource merges the request's resource over the config's.
func (r *anvilReceiver) requestResource(b *batch) (pcommon.Map, uint64) {
	if !b.hasResource || b.resource.Len() == 0 {
		return r.resource, 0
	}
	m := pcommon.NewMap()
	r.resource.CopyTo(m)
	for k, v := range b.resource.All() {
		v.CopyTo(m.PutEmpty(k))
	}
	return m, metricstate.HashAttributes(m)
}

// count records the request's rejected events and truncated values.
func (r *anvilReceiver) count(ctx context.Context, b *batch) {
	if b.truncated > 0 {
		r.telemetry.ReceiverAnvilValuesTruncated.Add(ctx, int64(b.truncated))
	}
	if len(b.errors) == 0 {
		return
	}
	var byReason map[string]int64
	for _, e := range b.errors {
		if byReason == nil {
			byReason = map[string]int64{}
		}
		byReason[e.reason]++
	}
	for reason, n := range byReason {
		r.telemetry.ReceiverAnvilEventsRejected.Add(ctx, n, metric.WithAttributes(attribute.String("reason", reason)))
	}
	r.errlog.Warn("rejected", "Rejected invalid events",
		zap.Int("rejected", len(b.errors)), zap.Int("index", b.errors[0].Index), zap.String("error", b.errors[0].Error))
}

// countMissing records the events of an applied request that lacked a tag of
// a metric they fed (a client that does not merge a span's start metadata
// into its stop and exception events, or one that leaves a key out): once per
// request and (event, attribute), logged at most once a minute.
func (r *anvilReceiver) countMissing(ctx context.Context, st *stage) {
	if len(st.touched) == 0 {
		return
	}
	var total int64
	for _, slot := range st.touched {
		n := st.missing[slot]
		total += n
		r.telemetry.ReceiverAnvilEventsMissingAttribute.Add(ctx, n, r.missingOpts[slot])
	}
	first := r.agg.missing[st.touched[0]]
	r.errlog.Warn("missing_attribute",
		"Accepted events lack a metadata key their metrics are tagged by; their series lack that attribute "+
			"(a client must merge a span's start metadata into its stop and exception events)",
		zap.Int64("count", total), zap.String("event", first.event), zap.String("attribute", first.attribute))
}

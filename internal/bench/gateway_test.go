//go:build bench

package bench

import (
	"context"
	"net"
	"sync"
	"sync/atomic"
	"testing"

	_ "go.opentelemetry.io/collector/config/configgrpc" // registers the zstd gRPC compressor the agent uses
	"go.opentelemetry.io/collector/pdata/plog/plogotlp"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/pmetric/pmetricotlp"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/anvil/anvilcol/internal/e2etest"
)

// sinkGateway is the gateway tier as the agent sees it: OTLP/gRPC over TLS,
// a bearer token checked on every call. It counts what arrives: log records
// and spans by name, and the latest cumulative value of every series of
// anvil.label.submit.count (so duplicates after a retry never count twice).
type sinkGateway struct {
	addr  string
	tls   e2etest.TLSFiles
	token string
	srv   *grpc.Server

	mu           sync.Mutex
	logs         map[string]int64
	spans        map[string]int64
	submits      map[string]int64 // series key -> latest cumulative value
	metricPts    int64
	unauthorized int64

	wireBytes atomic.Int64 // bytes read from agents' connections (TLS records: what crosses the network)
}

func newSinkGateway(t testing.TB, tls e2etest.TLSFiles, token string) *sinkGateway {
	g := &sinkGateway{addr: "127.0.0.1:" + itoa(e2etest.FreePort(t)), tls: tls, token: token}
	g.reset()
	t.Cleanup(g.stop)
	return g
}

func (g *sinkGateway) reset() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.logs, g.spans, g.submits, g.metricPts = map[string]int64{}, map[string]int64{}, map[string]int64{}, 0
}

// start listens (again) on the gateway's address.
func (g *sinkGateway) start(t testing.TB) {
	creds, err := credentials.NewServerTLSFromFile(g.tls.CertFile, g.tls.KeyFile)
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", g.addr)
	if err != nil {
		t.Fatal(err)
	}
	l = countingListener{Listener: l, n: &g.wireBytes}
	g.srv = grpc.NewServer(grpc.Creds(creds), grpc.UnaryInterceptor(g.auth))
	plogotlp.RegisterGRPCServer(g.srv, &sinkLogs{g: g})
	ptraceotlp.RegisterGRPCServer(g.srv, &sinkTraces{g: g})
	pmetricotlp.RegisterGRPCServer(g.srv, &sinkMetrics{g: g})
	go func() { _ = g.srv.Serve(l) }()
}

func (g *sinkGateway) stop() {
	if g.srv != nil {
		g.srv.Stop()
		g.srv = nil
	}
}

func (g *sinkGateway) auth(ctx context.Context, req any, _ *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
	md, _ := metadata.FromIncomingContext(ctx)
	if v := md.Get("authorization"); len(v) != 1 || v[0] != "Bearer "+g.token {
		g.mu.Lock()
		g.unauthorized++
		g.mu.Unlock()
		return nil, status.Error(codes.Unauthenticated, "bad token")
	}
	return h(ctx, req)
}

// countingListener counts the bytes its connections read into n.
type countingListener struct {
	net.Listener
	n *atomic.Int64
}

func (l countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return countingConn{Conn: c, n: l.n}, nil
}

type countingConn struct {
	net.Conn
	n *atomic.Int64
}

func (c countingConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.n.Add(int64(n))
	return n, err
}

type snapshot struct {
	logs, spans  map[string]int64
	submits      int64
	metricPts    int64
	unauthorized int64
}

func (g *sinkGateway) snapshot() snapshot {
	g.mu.Lock()
	defer g.mu.Unlock()
	s := snapshot{logs: map[string]int64{}, spans: map[string]int64{}, metricPts: g.metricPts, unauthorized: g.unauthorized}
	for k, v := range g.logs {
		s.logs[k] = v
	}
	for k, v := range g.spans {
		s.spans[k] = v
	}
	for _, v := range g.submits {
		s.submits += v
	}
	return s
}

type sinkLogs struct {
	plogotlp.UnimplementedGRPCServer
	g *sinkGateway
}

func (s *sinkLogs) Export(_ context.Context, req plogotlp.ExportRequest) (plogotlp.ExportResponse, error) {
	counts := map[string]int64{}
	rls := req.Logs().ResourceLogs()
	for i := 0; i < rls.Len(); i++ {
		sls := rls.At(i).ScopeLogs()
		for j := 0; j < sls.Len(); j++ {
			lrs := sls.At(j).LogRecords()
			for k := 0; k < lrs.Len(); k++ {
				counts[lrs.At(k).EventName()]++
			}
		}
	}
	s.g.mu.Lock()
	for k, v := range counts {
		s.g.logs[k] += v
	}
	s.g.mu.Unlock()
	return plogotlp.NewExportResponse(), nil
}

type sinkTraces struct {
	ptraceotlp.UnimplementedGRPCServer
	g *sinkGateway
}

func (s *sinkTraces) Export(_ context.Context, req ptraceotlp.ExportRequest) (ptraceotlp.ExportResponse, error) {
	counts := map[string]int64{}
	rss := req.Traces().ResourceSpans()
	for i := 0; i < rss.Len(); i++ {
		sss := rss.At(i).ScopeSpans()
		for j := 0; j < sss.Len(); j++ {
			spans := sss.At(j).Spans()
			for k := 0; k < spans.Len(); k++ {
				counts[spans.At(k).Name()]++
			}
		}
	}
	s.g.mu.Lock()
	for k, v := range counts {
		s.g.spans[k] += v
	}
	s.g.mu.Unlock()
	return ptraceotlp.NewExportResponse(), nil
}

type sinkMetrics struct {
	pmetricotlp.UnimplementedGRPCServer
	g *sinkGateway
}

func (s *sinkMetrics) Export(_ context.Context, req pmetricotlp.ExportRequest) (pmetricotlp.ExportResponse, error) {
	s.g.mu.Lock()
	defer s.g.mu.Unlock()
	s.g.metricPts += int64(req.Metrics().DataPointCount())
	rms := req.Metrics().ResourceMetrics()
	for i := 0; i < rms.Len(); i++ {
		rm := rms.At(i)
		res := ""
		if v, ok := rm.Resource().Attributes().Get("service.instance.id"); ok {
			res = v.AsString()
		}
		sms := rm.ScopeMetrics()
		for j := 0; j < sms.Len(); j++ {
			ms := sms.At(j).Metrics()
			for k := 0; k < ms.Len(); k++ {
				m := ms.At(k)
				if m.Name() != "anvil.label.submit.count" || m.Type() != pmetric.MetricTypeSum {
					continue
				}
				dps := m.Sum().DataPoints()
				for p := 0; p < dps.Len(); p++ {
					dp := dps.At(p)
					key := res + "|" + itoa(int(dp.StartTimestamp())) + "|" + attrKey(dp.Attributes().AsRaw())
					v := dp.IntValue()
					if dp.ValueType() == pmetric.NumberDataPointValueTypeDouble {
						v = int64(dp.DoubleValue())
					}
					if v > s.g.submits[key] {
						s.g.submits[key] = v
					}
				}
			}
		}
	}
	return pmetricotlp.NewExportResponse(), nil
}

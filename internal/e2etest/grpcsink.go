package e2etest

import (
	"context"
	"net"
	"testing"

	"go.opentelemetry.io/collector/pdata/plog/plogotlp"
	"go.opentelemetry.io/collector/pdata/pmetric/pmetricotlp"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	"google.golang.org/grpc"
)

// ServeGRPC also serves the sink as a plaintext OTLP/gRPC endpoint on a free
// loopback port (for `otlp_grpc` exporters with `tls.insecure: true`) and
// returns its host:port. What arrives over gRPC is kept with what arrives
// over HTTP.
func (s *OTLPSink) ServeGRPC(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	plogotlp.RegisterGRPCServer(srv, &grpcLogs{s: s})
	ptraceotlp.RegisterGRPCServer(srv, &grpcTraces{s: s})
	pmetricotlp.RegisterGRPCServer(srv, &grpcMetrics{s: s})
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(srv.Stop)
	return l.Addr().String()
}

type grpcLogs struct {
	plogotlp.UnimplementedGRPCServer
	s *OTLPSink
}

func (g *grpcLogs) Export(_ context.Context, req plogotlp.ExportRequest) (plogotlp.ExportResponse, error) {
	keep(g.s, &g.s.logs, req.Logs())
	return plogotlp.NewExportResponse(), nil
}

type grpcTraces struct {
	ptraceotlp.UnimplementedGRPCServer
	s *OTLPSink
}

func (g *grpcTraces) Export(_ context.Context, req ptraceotlp.ExportRequest) (ptraceotlp.ExportResponse, error) {
	keep(g.s, &g.s.traces, req.Traces())
	return ptraceotlp.NewExportResponse(), nil
}

type grpcMetrics struct {
	pmetricotlp.UnimplementedGRPCServer
	s *OTLPSink
}

func (g *grpcMetrics) Export(_ context.Context, req pmetricotlp.ExportRequest) (pmetricotlp.ExportResponse, error) {
	keep(g.s, &g.s.metrics, req.Metrics())
	return pmetricotlp.NewExportResponse(), nil
}

// keep appends v to the sink's list dst under the sink's lock.
func keep[T any](s *OTLPSink, dst *[]T, v T) {
	s.mu.Lock()
	defer s.mu.Unlock()
	*dst = append(*dst, v)
}

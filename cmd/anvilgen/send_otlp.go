package main

import (
	"bytes"
	"context"
	"encoding/hex"
	"net/http"
	"strings"
	"time"

	"github.com/klauspost/compress/gzip"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/plog/plogotlp"
)

// otlpSender posts events as OTLP/HTTP protobuf log records in the shape the
// anvil receiver gives them (ARCHITECTURE.md, "Events: one naming"): what an
// Anvil node using an OpenTelemetry logs SDK would send.
type otlpSender struct {
	p    *httpPoster
	url  string
	gzip bool
}

func newOTLPSender(cfg *Config) (*otlpSender, error) {
	return &otlpSender{p: newHTTPPoster(cfg), url: strings.TrimSuffix(cfg.Endpoint, "/") + "/v1/logs", gzip: cfg.Gzip}, nil
}

func (s *otlpSender) close() { s.p.client.CloseIdleConnections() }

// toLogs converts one node's events.
func toLogs(nodeID string, events []Event, observed time.Time) plog.Logs {
	ld := plog.NewLogs()
	rl := ld.ResourceLogs().AppendEmpty()
	rl.Resource().Attributes().PutStr("service.name", "anvil")
	rl.Resource().Attributes().PutStr("service.instance.id", nodeID)
	sl := rl.ScopeLogs().AppendEmpty()
	sl.Scope().SetName("anvilgen")
	lrs := sl.LogRecords()
	lrs.EnsureCapacity(len(events))
	obs := pcommon.NewTimestampFromTime(observed)
	for i := range events {
		e := &events[i]
		lr := lrs.AppendEmpty()
		lr.SetEventName(e.Name)
		lr.SetTimestamp(pcommon.Timestamp(e.TimeUnixNano))
		lr.SetObservedTimestamp(obs)
		if strings.HasSuffix(e.Name, ".exception") {
			lr.SetSeverityNumber(plog.SeverityNumberError)
			lr.SetSeverityText("ERROR")
		} else {
			lr.SetSeverityNumber(plog.SeverityNumberInfo)
			lr.SetSeverityText("INFO")
		}
		body := lr.Body().SetEmptyMap()
		for _, m := range e.Measurements {
			putValue(body, m)
		}
		attrs := lr.Attributes()
		attrs.EnsureCapacity(len(e.Metadata))
		for _, m := range e.Metadata {
			putValue(attrs, m)
			if m.key == "traceparent" {
				setTraceContext(lr, m.val.s)
			}
		}
	}
	return ld
}

func putValue(m pcommon.Map, e kv) {
	switch e.val.kind {
	case kindInt:
		m.PutInt(e.key, e.val.i)
	case kindFloat:
		m.PutDouble(e.key, e.val.f)
	case kindBool:
		m.PutBool(e.key, e.val.b)
	default:
		m.PutStr(e.key, e.val.s)
	}
}

// setTraceContext sets TraceID and the enclosing span's SpanID from a W3C
// traceparent (00-<32 hex>-<16 hex>-<flags>).
func setTraceContext(lr plog.LogRecord, tp string) {
	if len(tp) != 55 {
		return
	}
	var tid pcommon.TraceID
	var sid pcommon.SpanID
	if _, err := hex.Decode(tid[:], []byte(tp[3:35])); err != nil {
		return
	}
	if _, err := hex.Decode(sid[:], []byte(tp[36:52])); err != nil {
		return
	}
	lr.SetTraceID(tid)
	lr.SetSpanID(sid)
}

func (s *otlpSender) send(ctx context.Context, n *node, events []Event, c *counters) {
	body, err := plogotlp.NewExportRequestFromLogs(toLogs(n.id, events, time.Now())).MarshalProto()
	if err != nil {
		c.failed.Add(int64(len(events)))
		return
	}
	encoding := ""
	if s.gzip {
		var z bytes.Buffer
		w := gzip.NewWriter(&z)
		_, _ = w.Write(body)
		_ = w.Close()
		body = z.Bytes()
		encoding = "gzip"
	}
	status, answer, err := s.p.post(ctx, s.url, "application/x-protobuf", encoding, body, c)
	if err != nil || status != http.StatusOK {
		if status == http.StatusBadRequest {
			c.rejected.Add(int64(len(events)))
		} else {
			c.failed.Add(int64(len(events)))
		}
		return
	}
	// A partial success names how many records were rejected (not which).
	resp := plogotlp.NewExportResponse()
	var rejected int64
	if resp.UnmarshalProto(answer) == nil {
		rejected = resp.PartialSuccess().RejectedLogRecords()
	}
	c.accepted.Add(int64(len(events)) - rejected)
	c.rejected.Add(rejected)
	if rejected == 0 {
		c.addAccepted(events, nil)
	}
}

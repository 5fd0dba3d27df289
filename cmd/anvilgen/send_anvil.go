package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"sync"

	"github.com/klauspost/compress/gzip"

	"github.com/anvil/anvilcol/internal/jsonenc"
)

// anvilSender posts events to the anvil receiver as AnvilCol.Forwarder does:
// one request per batch, the node's identity in `resource`.
type anvilSender struct {
	p      *httpPoster
	url    string
	ndjson bool
	gzip   bool
	bufs   sync.Pool
}

func newAnvilSender(cfg *Config) (*anvilSender, error) {
	return &anvilSender{
		p:      newHTTPPoster(cfg),
		url:    strings.TrimSuffix(cfg.Endpoint, "/") + "/v1/events",
		ndjson: cfg.Format == "ndjson",
		gzip:   cfg.Gzip,
	}, nil
}

func (s *anvilSender) close() { s.p.client.CloseIdleConnections() }

// anvilAnswer is the receiver's JSON answer (receiver/anvilreceiver/README.md, "Answers").
type anvilAnswer struct {
	Accepted int64 `json:"accepted"`
	Rejected int64 `json:"rejected"`
	Errors   []struct {
		Index int `json:"index"`
	} `json:"errors"`
}

// encodeAnvil renders the body of one request. NDJSON bodies have no
// resource member (protocol v1), so their events get the agent's identity:
// use json to keep simulated nodes apart.
func encodeAnvil(b []byte, nodeID string, events []Event, ndjson bool) []byte {
	if ndjson {
		for i := range events {
			b = events[i].appendJSON(b)
			b = append(b, '\n')
		}
		return b
	}
	b = append(b, `{"resource":{"service.instance.id":`...)
	b = jsonenc.AppendString(b, nodeID)
	b = append(b, `},"events":[`...)
	for i := range events {
		if i > 0 {
			b = append(b, ',')
		}
		b = events[i].appendJSON(b)
	}
	return append(b, "]}"...)
}

func (s *anvilSender) send(ctx context.Context, n *node, events []Event, c *counters) {
	bp, _ := s.bufs.Get().(*[]byte)
	if bp == nil {
		bp = new([]byte)
	}
	defer s.bufs.Put(bp)
	body := encodeAnvil((*bp)[:0], n.id, events, s.ndjson)
	*bp = body
	ctype := "application/json"
	if s.ndjson {
		ctype = "application/x-ndjson"
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
	status, answer, err := s.p.post(ctx, s.url, ctype, encoding, body, c)
	switch {
	case err != nil || status >= 500 || status == http.StatusTooManyRequests:
		c.failed.Add(int64(len(events)))
	case status == http.StatusOK || status == http.StatusBadRequest:
		// 400: no event valid (or a body problem); 200: some or all kept.
		var a anvilAnswer
		if json.Unmarshal(answer, &a) != nil || (status == http.StatusOK && a.Accepted+a.Rejected != int64(len(events))) {
			if status == http.StatusOK {
				c.accepted.Add(int64(len(events)))
				c.addAccepted(events, nil)
			} else {
				c.rejected.Add(int64(len(events)))
			}
			return
		}
		if status == http.StatusBadRequest {
			c.rejected.Add(int64(len(events)))
			return
		}
		c.accepted.Add(a.Accepted)
		c.rejected.Add(a.Rejected)
		skip := map[int]bool{}
		for _, e := range a.Errors {
			skip[e.Index] = true
		}
		c.addAccepted(events, skip)
	default: // 401, 413, 415, ...: permanent
		c.failed.Add(int64(len(events)))
	}
}

package main

import (
	"context"
	"fmt"
	"net"
	"sync"
)

// statsdSender sends each event's DogStatsD lines as TelemetryMetricsStatsd
// does: when the event fires, the lines of all its metrics packed into
// datagrams of at most -mtu bytes (lines joined by '\n'). Each simulated node
// has its own socket.
type statsdSender struct {
	addr  string
	mtu   int
	mu    sync.Mutex
	conns map[*node]net.Conn
}

func newStatsdSender(cfg *Config) (*statsdSender, error) {
	if _, _, err := net.SplitHostPort(cfg.Endpoint); err != nil {
		return nil, fmt.Errorf("-endpoint: %w", err)
	}
	return &statsdSender{addr: cfg.Endpoint, mtu: cfg.MTU, conns: map[*node]net.Conn{}}, nil
}

func (s *statsdSender) conn(n *node) (net.Conn, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if c, ok := s.conns[n]; ok {
		return c, nil
	}
	c, err := net.Dial("udp", s.addr)
	if err != nil {
		return nil, err
	}
	s.conns[n] = c
	return c, nil
}

func (s *statsdSender) close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, c := range s.conns {
		_ = c.Close()
	}
}

func (s *statsdSender) send(_ context.Context, n *node, events []Event, c *counters) {
	conn, err := s.conn(n)
	if err != nil {
		c.failed.Add(int64(len(events)))
		return
	}
	var lines, pkt []byte
	written := events[:0:0]
	for i := range events {
		var k int
		lines, k = appendStatsdLines(lines[:0], &events[i])
		ok := true
		for _, p := range packLines(lines, s.mtu, &pkt) {
			c.requests.Add(1)
			c.bytes.Add(int64(len(p)))
			if _, err := conn.Write(p); err != nil {
				ok = false
			}
		}
		c.lines.Add(int64(k))
		if ok {
			c.accepted.Add(1)
			written = append(written, events[i])
		} else {
			c.failed.Add(1)
		}
	}
	c.addAccepted(written, nil)
}

// packLines splits newline-terminated lines into datagrams of at most mtu
// bytes (a longer single line goes alone), without the trailing newline. The
// datagrams alias *buf.
func packLines(lines []byte, mtu int, buf *[]byte) [][]byte {
	if len(lines) == 0 {
		return nil
	}
	b := (*buf)[:0]
	var cuts []int // end offsets in b
	start := 0
	for start < len(lines) {
		end := start
		for end < len(lines) && lines[end] != '\n' {
			end++
		}
		line := lines[start:end]
		pktStart := 0
		if len(cuts) > 0 {
			pktStart = cuts[len(cuts)-1]
		}
		if len(b) > pktStart && len(b)-pktStart+1+len(line) > mtu {
			cuts = append(cuts, len(b))
			pktStart = len(b)
		}
		if len(b) > pktStart {
			b = append(b, '\n')
		}
		b = append(b, line...)
		start = end + 1
	}
	cuts = append(cuts, len(b))
	*buf = b
	out := make([][]byte, 0, len(cuts))
	prev := 0
	for _, c := range cuts {
		out = append(out, b[prev:c])
		prev = c
	}
	return out
}

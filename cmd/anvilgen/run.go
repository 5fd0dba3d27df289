package main

import (
	"context"
	"fmt"
	"io"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// Report is what a run did. Events are counted once each, whatever the
// retries: sent = accepted + rejected + failed (+ in flight when cancelled).
type Report struct {
	Mode         string  `json:"mode"`
	Nodes        int     `json:"nodes"`
	TargetRate   float64 `json:"target_rate"`
	Seconds      float64 `json:"seconds"`
	Sent         int64   `json:"sent"`          // events handed to the wire (first attempts)
	Accepted     int64   `json:"accepted"`      // events the receiver accepted (statsd: written, UDP has no answer)
	Rejected     int64   `json:"rejected"`      // events the receiver refused as invalid (not retried)
	Retried      int64   `json:"retried"`       // request attempts repeated after 429/503 or a network error
	Failed       int64   `json:"failed"`        // events given up: permanent errors, -retry-for exceeded
	Requests     int64   `json:"requests"`      // requests (statsd: datagrams) sent, retries included
	Bytes        int64   `json:"bytes"`         // bytes on the wire (after gzip)
	Lines        int64   `json:"statsd_lines"`  // statsd lines sent
	AchievedRate float64 `json:"achieved_rate"` // sent / seconds

	AcceptedByName map[string]int64 `json:"accepted_by_name"`
}

// counters are updated by the workers.
type counters struct {
	sent, accepted, rejected, retried, failed, requests, bytes, lines atomic.Int64

	mu     sync.Mutex
	byName map[string]int64
}

// addAccepted counts the accepted events of a batch by name; skip holds the
// indexes the receiver rejected.
func (c *counters) addAccepted(events []Event, skip map[int]bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for i := range events {
		if !skip[i] {
			c.byName[events[i].Name]++
		}
	}
}

// node is one simulated Anvil node: its identity and its event stream.
type node struct {
	mu  sync.Mutex
	id  string
	gen *generator
}

// batchSender sends one batch of a node's events and counts the outcome.
type batchSender interface {
	send(ctx context.Context, n *node, events []Event, c *counters)
	close()
}

type job struct {
	node *node
	size int
}

// Run sends the configured load and returns its report.
func Run(ctx context.Context, cfg *Config, progress io.Writer) (*Report, error) {
	var s batchSender
	var err error
	switch cfg.Mode {
	case modeAnvil:
		s, err = newAnvilSender(cfg)
	case modeStatsd:
		s, err = newStatsdSender(cfg)
	case modeOTLP:
		s, err = newOTLPSender(cfg)
	}
	if err != nil {
		return nil, err
	}
	defer s.close()
	return run(ctx, cfg, s, progress, time.Now)
}

func run(ctx context.Context, cfg *Config, s batchSender, progress io.Writer, now func() time.Time) (*Report, error) {
	nodes := make([]*node, cfg.Nodes)
	for i := range nodes {
		nodes[i] = &node{id: cfg.NodePrefix + strconv.Itoa(i+1), gen: newGenerator(cfg.Seed+uint64(i)*7919, cfg.weights)}
	}
	c := &counters{byName: map[string]int64{}}
	jobSize := cfg.Batch
	if cfg.Mode == modeStatsd {
		// TelemetryMetricsStatsd sends as events fire: small jobs keep the
		// datagram stream smooth (about 200 jobs/s).
		jobSize = max(1, min(cfg.Batch, int(cfg.Rate/200)))
	}

	// Workers drain jobs until the channel closes; a cancelled ctx (signal)
	// stops retries too.
	jobs := make(chan job)
	var wg sync.WaitGroup
	for w := 0; w < cfg.Workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var buf []Event
			for j := range jobs {
				j.node.mu.Lock()
				buf = j.node.gen.next(buf[:0], j.size, now())
				j.node.mu.Unlock()
				c.sent.Add(int64(len(buf)))
				s.send(ctx, j.node, buf, c)
			}
		}()
	}

	start := now()
	stopProgress := startProgress(progress, c, start, now)
	var issued int64
	deadline := time.Time{}
	if cfg.Duration > 0 {
		deadline = start.Add(cfg.Duration)
	}
	timer := time.NewTimer(0)
	<-timer.C
	next := 0
pace:
	for {
		if cfg.Count > 0 && issued >= cfg.Count {
			break
		}
		if !deadline.IsZero() && !now().Before(deadline) {
			break
		}
		size := jobSize
		if cfg.Count > 0 {
			size = int(min(int64(size), cfg.Count-issued))
		}
		if cfg.Rate > 0 {
			// The job is due when the events before it are due.
			due := start.Add(time.Duration(float64(issued) / cfg.Rate * float64(time.Second)))
			if !deadline.IsZero() && due.After(deadline) {
				break
			}
			if d := due.Sub(now()); d > 0 {
				timer.Reset(d)
				select {
				case <-timer.C:
				case <-ctx.Done():
					break pace
				}
			}
		}
		select {
		case jobs <- job{node: nodes[next], size: size}:
		case <-ctx.Done():
			break pace
		}
		next = (next + 1) % len(nodes)
		issued += int64(size)
	}
	sendEnd := now()
	close(jobs)
	wg.Wait()
	stopProgress()

	secs := sendEnd.Sub(start).Seconds()
	r := &Report{
		Mode: cfg.Mode, Nodes: cfg.Nodes, TargetRate: cfg.Rate, Seconds: secs,
		Sent: c.sent.Load(), Accepted: c.accepted.Load(), Rejected: c.rejected.Load(),
		Retried: c.retried.Load(), Failed: c.failed.Load(), Requests: c.requests.Load(),
		Bytes: c.bytes.Load(), Lines: c.lines.Load(), AcceptedByName: c.byName,
	}
	if secs > 0 {
		r.AchievedRate = float64(r.Sent) / secs
	}
	return r, ctx.Err()
}

// startProgress prints one line a second to w (nil: none).
func startProgress(w io.Writer, c *counters, start time.Time, now func() time.Time) func() {
	if w == nil {
		return func() {}
	}
	done := make(chan struct{})
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		t := time.NewTicker(time.Second)
		defer t.Stop()
		var last int64
		for {
			select {
			case <-done:
				return
			case <-t.C:
				s := c.sent.Load()
				fmt.Fprintf(w, "anvilgen: %5.0fs sent %d (%d/s) accepted %d rejected %d retried %d failed %d\n",
					now().Sub(start).Seconds(), s, s-last, c.accepted.Load(), c.rejected.Load(), c.retried.Load(), c.failed.Load())
				last = s
			}
		}
	}()
	return func() { close(done); <-stopped }
}

// WriteText prints the report for a person.
func (r *Report) WriteText(w io.Writer) {
	fmt.Fprintf(w, "mode %s, %d node(s), %.1fs, target %.0f events/s, achieved %.0f events/s\n",
		r.Mode, r.Nodes, r.Seconds, r.TargetRate, r.AchievedRate)
	fmt.Fprintf(w, "sent %d  accepted %d  rejected %d  retried %d  failed %d  (%d requests, %d bytes",
		r.Sent, r.Accepted, r.Rejected, r.Retried, r.Failed, r.Requests, r.Bytes)
	if r.Mode == modeStatsd {
		fmt.Fprintf(w, ", %d lines; UDP has no answer: accepted = written", r.Lines)
	}
	fmt.Fprintln(w, ")")
	names := make([]string, 0, len(r.AcceptedByName))
	for n := range r.AcceptedByName {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-42s %d\n", n, r.AcceptedByName[n])
	}
}

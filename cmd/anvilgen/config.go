package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net/url"
	"strings"
	"time"
)

// Modes: the three ways an Anvil node's telemetry reaches an agent.
const (
	modeAnvil  = "anvil"  // AnvilCol.Forwarder: JSON/NDJSON events to the anvil receiver
	modeStatsd = "statsd" // TelemetryMetricsStatsd: DogStatsD lines over UDP
	modeOTLP   = "otlp"   // OTLP/HTTP protobuf log records (the anvil receiver's event shape)
)

// Config is anvilgen's command line.
type Config struct {
	Mode       string        // -mode (anvil)
	Endpoint   string        // -endpoint (per mode: http://localhost:4320, localhost:8125, http://localhost:4318)
	Rate       float64       // -rate events/s (1000); 0 = as fast as the workers go
	Duration   time.Duration // -duration (10s); 0 = until -count
	Count      int64         // -count events (0 = until -duration)
	Nodes      int           // -nodes simulated Anvil nodes (1), each its own service.instance.id
	NodePrefix string        // -node-prefix ("anvil@node-")
	Batch      int           // -batch events per request (500, AnvilCol.Forwarder's batch_size)
	Format     string        // -format json|ndjson (json)
	Gzip       bool          // -gzip request bodies (false)
	Weights    string        // -weights (DefaultWeights)
	Workers    int           // -workers concurrent requests (4)
	Seed       uint64        // -seed (1)
	Token      string        // -token: Authorization: Bearer <token> ("")
	MTU        int           // -mtu statsd packet bound (512, TelemetryMetricsStatsd's default)
	RetryFor   time.Duration // -retry-for: give a batch up after retrying this long (2m)
	Timeout    time.Duration // -timeout per request (10s)
	JSON       bool          // -json: print the report as one JSON object
	Quiet      bool          // -quiet: no progress lines on stderr

	weights []float64
}

func defaultEndpoint(mode string) string {
	switch mode {
	case modeStatsd:
		return "localhost:8125"
	case modeOTLP:
		return "http://localhost:4318"
	}
	return "http://localhost:4320"
}

// parseFlags reads args into a validated Config.
func parseFlags(args []string, stderr io.Writer) (*Config, error) {
	c := &Config{}
	fs := flag.NewFlagSet("anvilgen", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: anvilgen [flags]\n\nSends an ADR-008 Anvil event mix to an anvilcol agent at a fixed rate (cmd/anvilgen/README.md).\n\n")
		fs.PrintDefaults()
	}
	fs.StringVar(&c.Mode, "mode", modeAnvil, "anvil (JSON/NDJSON events), statsd (DogStatsD lines over UDP) or otlp (OTLP/HTTP log records)")
	fs.StringVar(&c.Endpoint, "endpoint", "", "target: anvil/otlp base URL (default http://localhost:4320 / http://localhost:4318), statsd host:port (default localhost:8125)")
	fs.Float64Var(&c.Rate, "rate", 1000, "events per second over all nodes (0: as fast as possible)")
	fs.DurationVar(&c.Duration, "duration", 10*time.Second, "how long to send (0: until -count)")
	fs.Int64Var(&c.Count, "count", 0, "stop after this many events (0: until -duration)")
	fs.IntVar(&c.Nodes, "nodes", 1, "simulated Anvil nodes, each with its own service.instance.id")
	fs.StringVar(&c.NodePrefix, "node-prefix", "anvil@node-", "service.instance.id prefix of the simulated nodes (suffix: node number)")
	fs.IntVar(&c.Batch, "batch", 500, "events per request (anvil, otlp)")
	fs.StringVar(&c.Format, "format", "json", "anvil body: json or ndjson")
	fs.BoolVar(&c.Gzip, "gzip", false, "gzip request bodies (anvil, otlp)")
	fs.StringVar(&c.Weights, "weights", DefaultWeights, "relative frequency of each operation: "+scenarioNames())
	fs.IntVar(&c.Workers, "workers", 4, "concurrent requests")
	fs.Uint64Var(&c.Seed, "seed", 1, "random seed (same seed, same events)")
	fs.StringVar(&c.Token, "token", "", "bearer token sent as Authorization (anvil, otlp)")
	fs.IntVar(&c.MTU, "mtu", 512, "statsd: largest datagram payload; an event's lines are packed up to it")
	fs.DurationVar(&c.RetryFor, "retry-for", 2*time.Minute, "give a batch up (count it failed) after retrying it this long")
	fs.DurationVar(&c.Timeout, "timeout", 10*time.Second, "per-request timeout")
	fs.BoolVar(&c.JSON, "json", false, "print the report as JSON")
	fs.BoolVar(&c.Quiet, "quiet", false, "no progress lines on stderr")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	if c.Endpoint == "" {
		c.Endpoint = defaultEndpoint(c.Mode)
	}
	return c, c.Validate()
}

// ErrNoLimit is returned when neither -duration nor -count bounds a run.
var ErrNoLimit = errors.New("-duration or -count must be > 0")

// Validate checks every flag and names the one to fix.
func (c *Config) Validate() error {
	switch c.Mode {
	case modeAnvil, modeStatsd, modeOTLP:
	default:
		return fmt.Errorf("-mode must be anvil, statsd or otlp, not %q", c.Mode)
	}
	if c.Mode == modeStatsd {
		if strings.Contains(c.Endpoint, "://") {
			return fmt.Errorf("-endpoint for statsd is host:port, not a URL (%q)", c.Endpoint)
		}
	} else if u, err := url.Parse(c.Endpoint); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("-endpoint for %s must be an http(s) URL, not %q", c.Mode, c.Endpoint)
	}
	if c.Rate < 0 {
		return fmt.Errorf("-rate must be >= 0")
	}
	if c.Duration < 0 || c.Count < 0 {
		return fmt.Errorf("-duration and -count must be >= 0")
	}
	if c.Duration == 0 && c.Count == 0 {
		return ErrNoLimit
	}
	if c.Nodes < 1 {
		return fmt.Errorf("-nodes must be >= 1")
	}
	if c.Batch < 1 || c.Batch > 10000 {
		return fmt.Errorf("-batch must be within [1, 10000] (the anvil receiver's max_events_per_request)")
	}
	if c.Format != "json" && c.Format != "ndjson" {
		return fmt.Errorf("-format must be json or ndjson, not %q", c.Format)
	}
	if c.Workers < 1 {
		return fmt.Errorf("-workers must be >= 1")
	}
	if c.MTU < 64 || c.MTU > 65000 {
		return fmt.Errorf("-mtu must be within [64, 65000]")
	}
	if c.RetryFor < 0 || c.Timeout <= 0 {
		return fmt.Errorf("-retry-for must be >= 0 and -timeout > 0")
	}
	w, err := parseWeights(c.Weights)
	if err != nil {
		return err
	}
	c.weights = w
	return nil
}

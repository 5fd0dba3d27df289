// Command anvilgen is a load generator for anvilcol: it sends a realistic
// ADR-008 Anvil event mix at a fixed rate, from simulated nodes, through the
// anvil receiver (JSON/NDJSON), as the DogStatsD lines TelemetryMetricsStatsd
// emits for the same events, or as OTLP log records, and reports what the
// receiver accepted. See README.md.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	os.Exit(mainErr(os.Args[1:], os.Stdout, os.Stderr))
}

func mainErr(args []string, stdout, stderr io.Writer) int {
	cfg, err := parseFlags(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintln(stderr, "anvilgen:", err)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var progress io.Writer
	if !cfg.Quiet {
		progress = stderr
	}
	r, err := Run(ctx, cfg, progress)
	if r == nil {
		fmt.Fprintln(stderr, "anvilgen:", err)
		return 1
	}
	if cfg.JSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		_ = enc.Encode(r)
	} else {
		r.WriteText(stdout)
	}
	if err != nil {
		fmt.Fprintln(stderr, "anvilgen: interrupted:", err)
		return 1
	}
	if r.Failed > 0 {
		return 1
	}
	return 0
}

package aitraceexporter

import (
	"context"
	"fmt"
	"testing"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/pdata/plog"

	"github.com/anvil/anvilcol/internal/durabletest"
	"github.com/anvil/anvilcol/internal/e2etest"
)

// TestDurabilityPersistentQueueSurvivesRestart: with a file_storage sending
// queue, AITrace down, the exporter shut down with artifacts and spans queued
// and restarted, AITrace up: every export is registered exactly once (one
// POST per Idempotency-Key) and every span arrives.
func TestDurabilityPersistentQueueSurvivesRestart(t *testing.T) {
	const exports, batches = 40, 4
	dir := t.TempDir()
	addr := durabletest.ReserveAddr(t)
	cfg := createDefaultConfig().(*Config)
	durabletest.ConfigureRestart(&cfg.ClientConfig, &cfg.QueueConfig, &cfg.RetryConfig, addr, true)

	// Run 1: AITrace is down. Each export is reported by both events, in
	// different batches.
	ext, host := durabletest.StartFileStorage(t, dir, nil)
	exp := newExporter(t, cfg, host)
	le, te := exp.Logs, exp.traces
	for b := 0; b < batches; b++ {
		for _, name := range []string{"anvil.export.generate.stop", "anvil.export.completed"} {
			var evs []func(lr plog.LogRecord)
			for i := b * exports / batches; i < (b+1)*exports/batches; i++ {
				evs = append(evs, exportEvent(name, fmt.Sprintf("exp-%03d", i), "q-1"))
			}
			if err := le.ConsumeLogs(context.Background(), logs(evs...)); err != nil {
				t.Fatal(err)
			}
		}
		if err := te.ConsumeTraces(context.Background(), interleaved(5)); err != nil { // 20 spans
			t.Fatal(err)
		}
	}
	if n := exp.tel.WaitCounter(t, 10*time.Second, 2, "otelcol_aitrace_requests", "outcome", "network_error"); n < 2 {
		t.Fatalf("exporter never tried the down endpoint (%d attempts)", n)
	}
	for _, c := range []component.Component{le, te, ext} {
		if err := c.Shutdown(context.Background()); err != nil {
			t.Fatalf("shutdown with data queued: %v", err)
		}
	}

	// Run 2: AITrace is up; new exporters on the same storage.
	in := new(e2etest.Intake)
	f := aitraceOn(in)
	in.Server = durabletest.Up(t, addr, in)
	ext2, host2 := durabletest.StartFileStorage(t, dir, nil)
	exp2 := newExporter(t, cfg, host2)
	defer func() {
		_ = exp2.shutdown()
		_ = ext2.Shutdown(context.Background())
	}()
	wantSpans := batches * 20
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		arts, _ := f.stored()
		if len(arts) == exports && len(f.requests("/v1/traces")) > 0 && spanCount(f) >= wantSpans {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(300 * time.Millisecond) // let any duplicate show up
	arts, posts := f.stored()
	for i := 0; i < exports; i++ {
		id := fmt.Sprintf("exp-%03d", i)
		if _, ok := arts[id]; !ok {
			t.Errorf("export %s lost across the restart", id)
		}
		if posts[id] != 1 {
			t.Errorf("export %s POSTed %d times, want exactly once", id, posts[id])
		}
	}
	if n := spanCount(f); n < wantSpans {
		t.Errorf("%d of %d spans arrived after the restart", n, wantSpans)
	}
}

func spanCount(f *fakeAITrace) int {
	_, spans := spansByTrace(f.requests("/v1/traces"))
	n := 0
	for _, s := range spans {
		n += len(s)
	}
	return n
}

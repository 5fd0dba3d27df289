package aitraceexporter

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
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
	const records, spans = 2 * exports, batches * 20 // each export is reported twice
	cfg := createDefaultConfig().(*Config)
	r := durabletest.NewRestart(t, &cfg.Config, true)

	// Run 1: AITrace is down. Each export is reported by both events, in
	// different batches.
	exp := newExporter(t, cfg, r.StartStorage())
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
	if err := exp.shutdown(); err != nil {
		t.Fatalf("shutdown with data queued: %v", err)
	}
	r.StopStorage()

	// Run 2: AITrace is up; new exporters on the same storage.
	in := new(e2etest.Intake)
	f := aitraceOn(in)
	in.Server = r.Up(in)
	exp2 := startExporter(t, cfg, r.StartStorage())
	// Nothing more can be sent once exporterhelper has sent every record and
	// span and the queues are empty with nothing in flight: a duplicate POST
	// would have to come from one of those sends. Both runs count: run 1 may
	// complete a batch without a POST, when the other queue consumer holds
	// the claim on each of its exports (recentSet).
	sent := func(name string) int64 { return exp.tel.Counter(t, name) + exp2.tel.Counter(t, name) }

	require.Eventually(t, func() bool {
		return sent("otelcol_exporter_sent_log_records") >= records &&
			sent("otelcol_exporter_sent_spans") >= spans && exp2.tel.QueueDrained(t)
	}, 20*time.Second, 10*time.Millisecond, "the queued records and spans were not all sent after the restart")
	if n := sent("otelcol_exporter_sent_log_records"); n != records {
		t.Errorf("%d log records sent over both runs, want each of the %d once", n, records)
	}
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
	if n := spanCount(f); n < spans {
		t.Errorf("%d of %d spans arrived after the restart", n, spans)
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

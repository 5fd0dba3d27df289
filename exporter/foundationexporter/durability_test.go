package foundationexporter

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/anvil/anvilcol/internal/durabletest"
	"github.com/anvil/anvilcol/internal/e2etest"
)

// TestDurabilityPersistentQueueSurvivesRestart: with a file_storage sending
// queue, Foundation down, the exporter shut down with data queued and
// restarted, every point arrives once Foundation is up (at least once).
func TestDurabilityPersistentQueueSurvivesRestart(t *testing.T) {
	const batches, perBatch = 6, 100
	got := restartWithQueuedData(t, true, batches, perBatch)
	for i := 0; i < batches*perBatch; i++ {
		if got[float64(i)] < 1 {
			t.Fatalf("point %d lost across the restart (%d of %d arrived)", i, len(got), batches*perBatch)
		}
	}
	dups := 0
	for _, n := range got {
		dups += n - 1
	}
	t.Logf("%d points delivered after restart, %d duplicates (at-least-once)", len(got), dups)
}

// TestDurabilityControlMemoryQueueLosesData is the control for the test
// above: the same scenario with the in-memory queue loses the queued points,
// so the durability test can tell a persistent queue from a volatile one.
func TestDurabilityControlMemoryQueueLosesData(t *testing.T) {
	got := restartWithQueuedData(t, false, 2, 50)
	if len(got) != 0 {
		t.Fatalf("%d points arrived without a persistent queue; the durability scenario does not exercise the storage", len(got))
	}
}

// restartWithQueuedData enqueues batches while Foundation is down, shuts the
// exporter and its storage down, brings Foundation up, starts a new exporter
// on the same storage directory and returns how often each point value
// arrived. It returns once the new exporter's own telemetry says nothing
// more can be sent: every queued point sent (persistent) or its queue
// empty with nothing in flight (in memory: the queue of a new process holds
// nothing, so nothing can arrive).
func restartWithQueuedData(t *testing.T, persistent bool, batches, perBatch int) map[float64]int {
	cfg := createDefaultConfig().(*Config)
	r := durabletest.NewRestart(t, &cfg.Config, persistent)

	// Run 1: Foundation is down.
	exp := newExporter(t, cfg, r.StartStorage())
	for b := 0; b < batches; b++ {
		if err := exp.ConsumeMetrics(context.Background(), gaugesFrom("durable", b*perBatch, perBatch)); err != nil {
			t.Fatalf("enqueue batch %d: %v", b, err)
		}
	}
	if n := exp.tel.WaitCounter(t, 10*time.Second, 2, "otelcol_foundation_requests", "outcome", "network_error"); n < 2 {
		t.Fatalf("exporter never tried the down endpoint (%d attempts)", n)
	}
	if err := exp.Shutdown(context.Background()); err != nil {
		t.Fatalf("shutdown with data queued: %v", err)
	}
	r.StopStorage()

	// Run 2: Foundation is up; a new exporter on the same storage.
	in := new(e2etest.Intake)
	f := foundationOn(in)
	in.Server = r.Up(in)
	exp2 := startExporter(t, cfg, r.StartStorage())
	want := int64(0)
	if persistent {
		want = int64(batches * perBatch)
	}

	require.Eventually(t, func() bool {
		return exp2.tel.Counter(t, "otelcol_exporter_sent_metric_points") >= want && exp2.tel.QueueDrained(t)
	}, 20*time.Second, 10*time.Millisecond, "the restarted exporter did not drain its queue")

	m := map[float64]int{}
	for _, r := range f.requests() {
		for _, rec := range r.records {
			if rec["metric_name"] == "durable" {
				m[rec["value"].(float64)]++
			}
		}
	}
	return m
}

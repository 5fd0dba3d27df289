package foundationexporter

import (
	"context"
	"testing"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/exporter"

	"github.com/anvil/anvilcol/exporter/foundationexporter/internal/metadatatest"
	"github.com/anvil/anvilcol/internal/durabletest"
)

// TestDurabilityPersistentQueueSurvivesRestart: with a file_storage sending
// queue, Foundation down, the exporter shut down with data queued and
// restarted, every point arrives once Foundation is up (at least once).
func TestDurabilityPersistentQueueSurvivesRestart(t *testing.T) {
	const batches, perBatch = 6, 100
	got := restartWithQueuedData(t, true, batches, perBatch, 20*time.Second)
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
	got := restartWithQueuedData(t, false, 2, 50, time.Second)
	if len(got) != 0 {
		t.Fatalf("%d points arrived without a persistent queue; the durability scenario does not exercise the storage", len(got))
	}
}

// restartWithQueuedData enqueues batches while Foundation is down, shuts the
// exporter and its storage down, brings Foundation up, starts a new exporter
// on the same storage directory and returns how often each point value
// arrived within wait.
func restartWithQueuedData(t *testing.T, persistent bool, batches, perBatch int, wait time.Duration) map[float64]int {
	dir := t.TempDir()
	addr := durabletest.ReserveAddr(t)
	cfg := createDefaultConfig().(*Config)
	cfg.ClientConfig.Endpoint = "http://" + addr
	cfg.ClientConfig.Timeout = 2 * time.Second
	cfg.RetryConfig.InitialInterval = 20 * time.Millisecond
	cfg.RetryConfig.MaxInterval = 100 * time.Millisecond
	cfg.RetryConfig.MaxElapsedTime = 0 // retry until shut down
	q := cfg.QueueConfig.GetOrInsertDefault()
	if persistent {
		q.StorageID = &durabletest.StorageID
	}
	q.NumConsumers = 2

	start := func(host component.Host) (exporter.Metrics, *componenttest.Telemetry) {
		tel := componenttest.NewTelemetry()
		t.Cleanup(func() { _ = tel.Shutdown(context.Background()) })
		exp, err := NewFactory().CreateMetrics(context.Background(), metadatatest.NewSettings(tel), cfg)
		if err != nil {
			t.Fatal(err)
		}
		if err := exp.Start(context.Background(), host); err != nil {
			t.Fatal(err)
		}
		return exp, tel
	}

	// Run 1: Foundation is down.
	ext, host := durabletest.StartFileStorage(t, dir, nil)
	exp, tel := start(host)
	for b := 0; b < batches; b++ {
		if err := exp.ConsumeMetrics(context.Background(), gaugesFrom("durable", b*perBatch, perBatch)); err != nil {
			t.Fatalf("enqueue batch %d: %v", b, err)
		}
	}
	te := &testExporter{tel: tel}
	deadline := time.Now().Add(10 * time.Second)
	for te.counter(t, "otelcol_foundation_requests", "outcome", "network_error") < 2 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if n := te.counter(t, "otelcol_foundation_requests", "outcome", "network_error"); n < 2 {
		t.Fatalf("exporter never tried the down endpoint (%d attempts)", n)
	}
	if err := exp.Shutdown(context.Background()); err != nil {
		t.Fatalf("shutdown with data queued: %v", err)
	}
	if err := ext.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}

	// Run 2: Foundation is up; a new exporter on the same storage.
	f := &fakeFoundation{}
	durabletest.Up(t, addr, f)
	ext2, host2 := durabletest.StartFileStorage(t, dir, nil)
	exp2, _ := start(host2)
	defer ext2.Shutdown(context.Background())
	defer exp2.Shutdown(context.Background())

	seen := func() map[float64]int {
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
	deadline = time.Now().Add(wait)
	for len(seen()) < batches*perBatch && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	return seen()
}

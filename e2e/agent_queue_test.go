//go:build e2e

package e2e

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/anvil/anvilcol/internal/e2etest"
)

// TestAgentFullQueueAnswers503AndLosesNothing: with the gateway tier down,
// config/agent.yaml's log_storage clients (write_behind's, for logs and
// traces) fill up to their max_size (ANVILCOL_STORAGE_MAX_BYTES, 32 MiB
// here); the anvil receiver then answers 503, never 200-and-drop; once the
// gateways are back, every event answered 200 reaches the tracing backend as
// an event log.
func TestAgentFullQueueAnswers503AndLosesNothing(t *testing.T) {
	f := newFleetEnv(t, nil)
	defer f.stopAll()
	for _, g := range f.gateways {
		g.c.Kill() // the gateway tier is down
	}
	agent := f.startAgent(t, "node-1", func(env map[string]string) {
		env["ANVILCOL_STORAGE_MAX_BYTES"] = fmt.Sprint(32 << 20)
	})

	// Export failures (event logs and spans kept at rate 1.0), each with a
	// 2 KiB stack trace: a batch of 500 is a ~2.2 MB request in
	// write_behind's traces storage, so about 15 batches fill its 32 MiB.
	stack := strings.Repeat("lib/anvil/export.ex:9 Anvil.Export.generate/2\n", 45)
	accepted := map[string]bool{}
	refused := 0
	for batch := 0; batch < 400 && refused == 0; batch++ {
		var events []fleetEvent
		for i := range 500 {
			events = append(events, valuesEvent("anvil.export.generate.exception", map[string]any{"duration": 1e9},
				map[string]any{"export_id": fmt.Sprintf("e-%d-%d", batch, i), "queue_id": "q-1", "format": "csv",
					"kind": "error", "reason": "disk full", "stacktrace": stack}))
		}
		if postEvents(t, agent, nil, events) {
			for _, e := range events {
				accepted[e.Metadata["export_id"].(string)] = true
			}
		} else {
			refused++
		}
	}
	if refused == 0 {
		t.Fatalf("%d events accepted into a 32 MiB queue with the gateways down and never a refusal", len(accepted))
	}
	if len(accepted) < 5_000 {
		t.Fatalf("only %d events accepted before the first refusal: the queue refused long before max_size", len(accepted))
	}
	t.Logf("%d events accepted, then refused", len(accepted))
	// The agent logs the refusal before it answers 503; its output reaches
	// this process through a pipe, read on its own goroutine.
	e2etest.Eventually(t, 10*time.Second, func() bool { return strings.Contains(agent.c.Output(), "max_size") },
		"the agent's log says why it refused (max_size)")
	// What anvilcol_agent_refusing reads (deploy/prometheus/anvil-rules.yaml):
	// the refusals counted by reason on the agent's own telemetry.
	telemetry := fmt.Sprintf("http://127.0.0.1:%d/metrics", agent.telemetry)
	if n := counterSum(t, telemetry, "otelcol_log_storage_writes_refused", map[string]string{"reason": "max_size"}); n < float64(refused) {
		t.Errorf("otelcol_log_storage_writes_refused{reason=max_size} = %v after %d refused requests", n, refused)
	}
	if n := counterSum(t, telemetry, "otelcol_processor_write_behind_dropped", nil); n != 0 {
		t.Errorf("otelcol_processor_write_behind_dropped = %v: a refusal is not a drop", n)
	}

	// The gateways come back: every accepted event arrives.
	for _, g := range f.gateways {
		g.c = e2etest.Start(t, g.opts)
	}
	missing := len(accepted)
	for deadline := time.Now().Add(3 * time.Minute); missing > 0 && time.Now().Before(deadline); time.Sleep(time.Second) {
		_, got := f.tracingLogs("export_id")
		missing = 0
		for id := range accepted {
			if !got[id] {
				missing++
			}
		}
	}
	if missing > 0 {
		t.Fatalf("%d of the %d events answered 200 never arrived once the gateways were back", missing, len(accepted))
	}
}

package e2etest

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// AlertmanagerBinary is where the Debian package prometheus-alertmanager
// installs Alertmanager (.ci/run installs it).
const AlertmanagerBinary = "/usr/bin/prometheus-alertmanager"

// alertmanagerBinary finds Alertmanager or fails the test with the install
// command: the tests that need it never skip.
func alertmanagerBinary(t testing.TB) string {
	t.Helper()
	if _, err := os.Stat(AlertmanagerBinary); err == nil {
		return AlertmanagerBinary
	}
	p, err := exec.LookPath("prometheus-alertmanager")
	if err != nil {
		t.Fatalf("%s not installed: apt-get install -y prometheus-alertmanager", AlertmanagerBinary)
	}
	return p
}

// StartAlertmanager runs a real Alertmanager on a free loopback port, with
// clustering off, storage in a temp dir and a minimal config (one receiver
// that sends nowhere, group_wait 0s), and returns its base URL. It is
// stopped at the end of the test; without the binary the test fails with the
// install command.
func StartAlertmanager(t testing.TB) string {
	t.Helper()
	bin := alertmanagerBinary(t)
	dir := t.TempDir()
	conf := filepath.Join(dir, "alertmanager.yml")
	if err := os.WriteFile(conf, []byte(`route:
  receiver: devnull
  group_by: [alertname]
  group_wait: 0s
  group_interval: 1s
receivers:
  - name: devnull
`), 0o600); err != nil {
		t.Fatal(err)
	}
	return startAlertmanagerProcess(t, bin, dir, conf, "--cluster.listen-address=")
}

// AlertmanagerCluster is a cluster of real Alertmanagers gossiping on loopback.
type AlertmanagerCluster struct {
	// URLs are the members' base URLs (http://127.0.0.1:port), in peer order.
	URLs []string
}

// StartAlertmanagerCluster runs n Alertmanagers that form one cluster over
// loopback (--cluster.listen-address / --cluster.peer) and route every alert,
// one alert per group (group_by: ['...']), to webhookURL with send_resolved.
// Gossip, settle and peer timeouts are short so the cluster deduplicates
// within a fraction of a second: member i waits i × 100ms (peer timeout)
// before sending what no earlier member has sent. The peer timeout is kept
// well below group_interval (2s): a later member captures its group's state
// before that wait, so if an earlier member notified a change (a resolve)
// during the wait, the later one would send its stale state once more.
// It fails the test if the binary is missing.
func StartAlertmanagerCluster(t testing.TB, n int, webhookURL string) *AlertmanagerCluster {
	t.Helper()
	bin := alertmanagerBinary(t)
	dir := t.TempDir()
	conf := filepath.Join(dir, "alertmanager.yml")
	if err := os.WriteFile(conf, []byte(fmt.Sprintf(`route:
  receiver: hook
  group_by: ['...']
  group_wait: 0s
  group_interval: 2s
  repeat_interval: 1h
receivers:
  - name: hook
    webhook_configs:
      - url: %q
        send_resolved: true
`, webhookURL)), 0o600); err != nil {
		t.Fatal(err)
	}
	peers := make([]int, n)
	for i := range peers {
		peers[i] = FreePort(t)
	}
	c := &AlertmanagerCluster{}
	for i := range n {
		args := []string{
			fmt.Sprintf("--cluster.listen-address=127.0.0.1:%d", peers[i]),
			fmt.Sprintf("--cluster.advertise-address=127.0.0.1:%d", peers[i]),
			"--cluster.peer-timeout=100ms",
			"--cluster.gossip-interval=20ms",
			"--cluster.pushpull-interval=500ms",
			"--cluster.settle-timeout=1s",
		}
		for j, p := range peers {
			if j != i {
				args = append(args, fmt.Sprintf("--cluster.peer=127.0.0.1:%d", p))
			}
		}
		c.URLs = append(c.URLs, startAlertmanagerProcess(t, bin, filepath.Join(dir, fmt.Sprint(i)), conf, args...))
	}
	return c
}

// startAlertmanagerProcess runs one Alertmanager with conf and extra args on
// a free web port, stops it at the end of the test, and waits until ready.
func startAlertmanagerProcess(t testing.TB, bin, dir, conf string, extra ...string) string {
	t.Helper()
	port := FreePort(t)
	ctx, cancel := context.WithCancel(context.Background())
	out := &syncBuffer{}
	args := append([]string{
		fmt.Sprintf("--web.listen-address=127.0.0.1:%d", port),
		"--storage.path=" + filepath.Join(dir, "data"),
		"--config.file=" + conf,
	}, extra...)
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatalf("e2etest: start %s: %v", bin, err)
	}
	t.Cleanup(func() {
		cancel()
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("alertmanager 127.0.0.1:%d output:\n%s", port, out.String())
		}
	})
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	client := &http.Client{Timeout: time.Second}
	Eventually(t, 20*time.Second, func() bool {
		resp, err := client.Get(base + "/-/ready")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}, "alertmanager on %s not ready:\n%s", base, out)
	return base
}

// AlertmanagerAlert is the part of an alert from Alertmanager's
// GET /api/v2/alerts that tests check.
type AlertmanagerAlert struct {
	Labels      map[string]string `json:"labels"`
	Annotations map[string]string `json:"annotations"`
	StartsAt    time.Time         `json:"startsAt"`
	EndsAt      time.Time         `json:"endsAt"`
	Status      struct {
		State string `json:"state"` // active, suppressed, unprocessed
	} `json:"status"`
}

// Active reports whether the alert is active and not past its endsAt.
func (a AlertmanagerAlert) Active() bool {
	return a.Status.State == "active" && (a.EndsAt.IsZero() || a.EndsAt.After(time.Now()))
}

// AlertmanagerAlerts lists the alerts Alertmanager at base holds.
func AlertmanagerAlerts(t testing.TB, base string) []AlertmanagerAlert {
	t.Helper()
	resp, err := http.Get(base + "/api/v2/alerts")
	if err != nil {
		t.Fatalf("e2etest: GET %s/api/v2/alerts: %v", base, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("e2etest: GET %s/api/v2/alerts: HTTP %d", base, resp.StatusCode)
	}
	var as []AlertmanagerAlert
	if err := json.NewDecoder(resp.Body).Decode(&as); err != nil {
		t.Fatalf("e2etest: decode alerts: %v", err)
	}
	return as
}

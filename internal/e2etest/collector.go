// Package e2etest runs the real anvilcol binaries in tests: it finds bin/anvilcol
// (or bin/anvilcol-agent, the agent distribution), starts it with a config on
// free loopback ports, waits for the health check, captures what it exports (an
// in-test OTLP/HTTP sink, any HTTP intake, the Prometheus endpoint) and stops it
// cleanly. Every address is loopback.
//
// Shipped and test configs take their ports from environment variables with
// defaults (`${env:ANVILCOL_HEALTH_PORT:-13133}`), so a test passes free ports
// through Options.Env.
package e2etest // import "github.com/anvil/anvilcol/internal/e2etest"

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"
)

// EnvBinary names the binary to test; default <repo>/bin/anvilcol.
const EnvBinary = "ANVILCOL_BIN"

// EnvAgentBinary names the agent distribution's binary to test; default
// <repo>/bin/anvilcol-agent (builder-agent-config.yaml).
const EnvAgentBinary = "ANVILCOL_AGENT_BIN"

// RepoRoot returns the repository root (the directory holding go.mod).
func RepoRoot(t testing.TB) string {
	t.Helper()
	_, file, _, _ := runtime.Caller(0)
	dir := filepath.Dir(file)
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("e2etest: go.mod not found above " + file)
		}
		dir = parent
	}
}

// Binary returns the path of the anvilcol binary under test. It fails the test
// with the fix when the binary is missing: end-to-end tests run against the
// built binary, which `make build` (and so `make test`) produces first.
func Binary(t testing.TB) string {
	t.Helper()
	return builtBinary(t, EnvBinary, "anvilcol")
}

// AgentBinary returns the path of the agent distribution's binary under test
// (bin/anvilcol-agent, which `make build` produces with bin/anvilcol).
func AgentBinary(t testing.TB) string {
	t.Helper()
	return builtBinary(t, EnvAgentBinary, "anvilcol-agent")
}

func builtBinary(t testing.TB, env, name string) string {
	t.Helper()
	p := os.Getenv(env)
	if p == "" {
		p = filepath.Join(RepoRoot(t), "bin", name)
	}
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("e2etest: %s binary %s not found (%v): run `make build` first or set %s", name, p, err, env)
	}
	return p
}

// Ports are handed out below Linux's ephemeral range (32768-60999), where the
// kernel picks the source ports of outgoing connections: a port from ":0"
// could be taken by some collector's outgoing connection between the test
// choosing it and the collector binding it. Each port is handed out once per
// test binary.
const (
	portLow  = 20000
	portHigh = 32767
)

var (
	portMu   sync.Mutex
	portNext = portLow + int(time.Now().UnixNano()%int64(portHigh-portLow))
	portUsed = map[int]bool{}
)

// FreePort returns a TCP port that was free a moment ago on every loopback
// address and that no other caller in this test binary got.
func FreePort(t testing.TB) int {
	t.Helper()
	return freePort(t, func(p int) bool {
		l, err := net.Listen("tcp", fmt.Sprintf(":%d", p))
		if err != nil {
			return false
		}
		_ = l.Close()
		return true
	})
}

// FreeUDPPort returns a UDP port that was free a moment ago, as FreePort.
func FreeUDPPort(t testing.TB) int {
	t.Helper()
	return freePort(t, func(p int) bool {
		c, err := net.ListenPacket("udp", fmt.Sprintf(":%d", p))
		if err != nil {
			return false
		}
		_ = c.Close()
		return true
	})
}

func freePort(t testing.TB, free func(int) bool) int {
	t.Helper()
	portMu.Lock()
	defer portMu.Unlock()
	for i := 0; i <= portHigh-portLow; i++ {
		p := portNext
		portNext++
		if portNext > portHigh {
			portNext = portLow
		}
		if !portUsed[p] && free(p) {
			portUsed[p] = true
			return p
		}
	}
	t.Fatal("e2etest: no free port left")
	return 0
}

// Options configure one collector run.
type Options struct {
	// Binary is the collector binary to run (default Binary(t), the full
	// distribution; AgentBinary(t) for the agent one).
	Binary string
	// Config is the path of the collector config (relative to the repo root or
	// absolute). Ignored when ConfigYAML is set.
	Config string
	// ConfigYAML is an inline config, written to a temp file.
	ConfigYAML string
	// Env is added to the collector's environment (ports, endpoints, secrets).
	Env map[string]string
	// HealthPort is the health_check extension's port; 0 means "do not wait for
	// health" (then Start only waits for the process to be running).
	HealthPort int
	// HealthHost is the address the health check listens on (default
	// 127.0.0.1; another loopback address for a replica bound to it).
	HealthHost string
	// StartTimeout bounds the wait for health (default 60s).
	StartTimeout time.Duration
}

// Collector is a running anvilcol process.
type Collector struct {
	t       testing.TB
	cmd     *exec.Cmd
	out     *syncBuffer
	done    chan struct{}
	waitErr error
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// Start runs the binary with opts and waits until it is healthy. The process is
// stopped at the end of the test; its output is printed if the test failed.
func Start(t testing.TB, opts Options) *Collector {
	t.Helper()
	cfg := opts.Config
	if opts.ConfigYAML != "" {
		cfg = filepath.Join(t.TempDir(), "config.yaml")
		if err := os.WriteFile(cfg, []byte(opts.ConfigYAML), 0o600); err != nil {
			t.Fatal(err)
		}
	} else if !filepath.IsAbs(cfg) {
		cfg = filepath.Join(RepoRoot(t), cfg)
	}
	c := &Collector{t: t, out: &syncBuffer{}, done: make(chan struct{})}
	bin := opts.Binary
	if bin == "" {
		bin = Binary(t)
	}
	c.cmd = exec.Command(bin, "--config", cfg)
	c.cmd.Env = append(os.Environ(), envList(opts.Env)...)
	c.cmd.Stdout = c.out
	c.cmd.Stderr = c.out
	if err := c.cmd.Start(); err != nil {
		t.Fatalf("e2etest: start %s: %v", c.cmd.Path, err)
	}
	go func() {
		c.waitErr = c.cmd.Wait()
		close(c.done)
	}()
	t.Cleanup(func() {
		c.Stop()
		if t.Failed() {
			t.Logf("anvilcol output:\n%s", c.out.String())
		}
	})
	if opts.HealthPort != 0 {
		timeout := opts.StartTimeout
		if timeout == 0 {
			timeout = 60 * time.Second
		}
		host := opts.HealthHost
		if host == "" {
			host = "127.0.0.1"
		}
		c.waitHealthy(net.JoinHostPort(host, strconv.Itoa(opts.HealthPort)), timeout)
	}
	return c
}

// HermeticEnv keeps the collector on loopback: some stock components probe
// cloud metadata services at start whatever their config says (the datadog
// exporter's hostname chain runs its EC2, GCP and Azure providers in parallel
// with the configured hostname). These variables disable or redirect every such
// probe to a closed loopback port: the AWS SDK's IMDS switch, the GCP metadata
// host, and an HTTP(S) proxy on loopback for any other non-loopback HTTP request
// (Go never proxies requests to loopback addresses, so sinks still work).
var HermeticEnv = map[string]string{
	"AWS_EC2_METADATA_DISABLED":         "true",
	"AWS_EC2_METADATA_SERVICE_ENDPOINT": "http://127.0.0.1:9",
	"GCE_METADATA_HOST":                 "127.0.0.1:9",
	"GCE_METADATA_IP":                   "127.0.0.1:9",
}

// envList renders HermeticEnv overlaid with m (m wins) as KEY=VALUE pairs.
func envList(m map[string]string) []string {
	out := make([]string, 0, len(m)+len(HermeticEnv))
	for k, v := range HermeticEnv {
		if _, ok := m[k]; !ok {
			out = append(out, k+"="+v)
		}
	}
	for k, v := range m {
		out = append(out, k+"="+v)
	}
	return out
}

func (c *Collector) waitHealthy(hostPort string, timeout time.Duration) {
	c.t.Helper()
	url := "http://" + hostPort + "/"
	deadline := time.Now().Add(timeout)
	client := &http.Client{Timeout: time.Second}
	for time.Now().Before(deadline) {
		select {
		case <-c.done:
			c.t.Fatalf("e2etest: anvilcol exited before becoming healthy (%v):\n%s", c.waitErr, c.out.String())
		default:
		}
		resp, err := client.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	c.t.Fatalf("e2etest: anvilcol not healthy on %s after %v:\n%s", url, timeout, c.out.String())
}

// Output returns everything the process printed so far.
func (c *Collector) Output() string { return c.out.String() }

// Stop sends SIGTERM and waits up to 30s for a clean exit (then kills). It
// returns the process's exit error (nil for a clean shutdown). Safe to call twice.
func (c *Collector) Stop() error {
	select {
	case <-c.done:
		return c.waitErr
	default:
	}
	_ = c.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-c.done:
	case <-time.After(30 * time.Second):
		_ = c.cmd.Process.Kill()
		<-c.done
		return fmt.Errorf("e2etest: anvilcol did not stop within 30s after SIGTERM")
	}
	return c.waitErr
}

// Kill sends SIGKILL (kill -9: no shutdown of any component, nothing
// flushed) and waits for the process to be gone.
func (c *Collector) Kill() {
	select {
	case <-c.done:
		return
	default:
	}
	_ = c.cmd.Process.Signal(syscall.SIGKILL)
	<-c.done
}

// Run runs the binary with args to completion (e.g. "components", "--version",
// "validate --config x") and returns its combined output and error.
func Run(t testing.TB, env map[string]string, args ...string) (string, error) {
	t.Helper()
	return RunBinary(t, Binary(t), env, args...)
}

// RunBinary is Run with another binary (AgentBinary(t)).
func RunBinary(t testing.TB, bin string, env map[string]string, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Dir = RepoRoot(t)
	cmd.Env = append(os.Environ(), envList(env)...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// Eventually polls cond every 50ms until it is true or timeout passes; it fails
// the test with msg otherwise.
func Eventually(t testing.TB, timeout time.Duration, cond func() bool, msg string, args ...any) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		if cond() {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("e2etest: timed out after %v: "+msg, append([]any{timeout}, args...)...)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Consistently checks cond every 50ms for d and fails the test with msg
// (t.Errorf, returning false) as soon as it does not hold. It is the one
// wait with a window, for what only the absence of an event can show: a
// duplicate that another process might still send, where nothing announces
// that it will not. Prefer a signal (a counter, a drained queue); where
// Consistently is used, say at the call why there is none and what bounds d.
func Consistently(t testing.TB, d time.Duration, cond func() bool, msg string, args ...any) bool {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		if !cond() {
			t.Errorf("e2etest: no longer true within %v: "+msg, append([]any{d}, args...)...)
			return false
		}
		if time.Now().After(deadline) {
			return true
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TelemetryYAML is the `service.telemetry` block (indent it under `service:`)
// that moves the collector's own metrics endpoint to port, so parallel
// collectors never fight over 8888. Own metrics are then at
// http://127.0.0.1:<port>/metrics.
func TelemetryYAML(port int) string {
	return fmt.Sprintf(`  telemetry:
    metrics:
      level: detailed
      readers:
        - pull:
            exporter:
              prometheus:
                host: 127.0.0.1
                port: %d
`, port)
}

//go:build bench

package bench

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/anvil/anvilcol/internal/e2etest"
)

// Knobs (environment, all optional):
//
//	BENCH_RATE     events/s per path (10000)
//	BENCH_WARMUP   before the window (5s)
//	BENCH_WINDOW   measured window (20s)
//	BENCH_PATHS    comma list of anvil, statsd, otlp (all three)
//	BENCH_NODES    simulated Anvil nodes (1: an agent runs beside one node)
//	BENCH_OUTAGE   gateway-down phase at BENCH_RATE on the anvil path (60s; 0 skips it)
//	BENCH_PPROF    a directory: add the pprof extension and write a CPU profile of the window per path,
//	               and a heap profile of the outage taken when its RSS peaked
//	ANVILGEN_BIN   the load generator (<repo>/bin/anvilgen)
//	ANVILCOL_AGENT_BIN the agent binary (<repo>/bin/anvilcol-agent; bin/anvilcol measures the full distribution)
//	BENCH_EXTRA_CONFIG space-separated config files merged over config/agent.yaml (experiments)
const token = "bench-gateway-token"

func envDur(k string, d time.Duration) time.Duration {
	if v := os.Getenv(k); v != "" {
		p, err := time.ParseDuration(v)
		if err != nil {
			panic(k + ": " + err.Error())
		}
		return p
	}
	return d
}

func envInt(k string, d int) int {
	if v := os.Getenv(k); v != "" {
		p, err := strconv.Atoi(v)
		if err != nil {
			panic(k + ": " + err.Error())
		}
		return p
	}
	return d
}

func itoa(i int) string { return strconv.Itoa(i) }

func attrKey(m map[string]any) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for _, k := range keys {
		fmt.Fprintf(&b, "%s=%v,", k, m[k])
	}
	return b.String()
}

// agent is one run of the shipped config/agent.yaml.
type agent struct {
	cmd    *exec.Cmd
	out    bytes.Buffer
	dir    string
	ports  map[string]int
	pprof  int
	health int
}

func startAgent(t *testing.T, gw *sinkGateway, withPprof bool) *agent {
	t.Helper()
	root := e2etest.RepoRoot(t)
	a := &agent{dir: t.TempDir(), ports: map[string]int{}}
	for _, k := range []string{"ANVIL", "OTLP_GRPC", "OTLP_HTTP", "HEALTH", "TELEMETRY"} {
		a.ports[k] = e2etest.FreePort(t)
	}
	a.ports["STATSD"] = e2etest.FreeUDPPort(t)
	a.health = a.ports["HEALTH"]
	args := []string{"--config", filepath.Join(root, "config", "agent.yaml")}
	if withPprof {
		a.pprof = e2etest.FreePort(t)
		extra := filepath.Join(a.dir, "pprof.yaml")
		yaml := fmt.Sprintf("extensions:\n  pprof:\n    endpoint: 127.0.0.1:%d\nservice:\n  extensions: [health_check, log_storage, bearertokenauth/gateway, pprof]\n", a.pprof)
		if err := os.WriteFile(extra, []byte(yaml), 0o600); err != nil {
			t.Fatal(err)
		}
		args = append(args, "--config", extra)
	}
	for _, f := range strings.Fields(os.Getenv("BENCH_EXTRA_CONFIG")) {
		args = append(args, "--config", f) // merged over the shipped config: for experiments
	}
	args = append(args, strings.Fields(os.Getenv("BENCH_AGENT_ARGS"))...) // e.g. --feature-gates=...
	a.cmd = exec.Command(e2etest.AgentBinary(t), args...)
	env := append(os.Environ(),
		"ANVILCOL_GATEWAY_ENDPOINT="+gw.addr,
		"ANVILCOL_GATEWAY_TOKEN="+token,
		"ANVILCOL_GATEWAY_CA_FILE="+gw.tls.CAFile,
		"ANVILCOL_STORAGE_DIR="+filepath.Join(a.dir, "queue"),
		"ANVILCOL_NODE_NAME=bench-node",
	)
	for k, p := range a.ports {
		env = append(env, fmt.Sprintf("ANVILCOL_%s_PORT=%d", k, p))
	}
	for k, v := range e2etest.HermeticEnv {
		env = append(env, k+"="+v)
	}
	a.cmd.Env = env
	a.cmd.Stdout, a.cmd.Stderr = &a.out, &a.out
	if err := a.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.stop(t) })
	deadline := time.Now().Add(60 * time.Second)
	for {
		resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/", a.health))
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return a
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("agent not healthy:\n%s", a.out.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func (a *agent) stop(t *testing.T) {
	if a.cmd.ProcessState != nil {
		return
	}
	_ = a.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan error, 1)
	go func() { done <- a.cmd.Wait() }()
	select {
	case <-done:
	case <-time.After(60 * time.Second):
		_ = a.cmd.Process.Kill()
		<-done
		t.Errorf("agent did not stop within 60s of SIGTERM")
	}
}

// cpuTicks is utime + stime of pid, in clock ticks (/proc/<pid>/stat fields 14, 15).
func cpuTicks(t *testing.T, pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:]) // fields from 3 on
	u, _ := strconv.ParseInt(f[11], 10, 64)
	k, _ := strconv.ParseInt(f[12], 10, 64)
	return u + k
}

// clkTck is USER_HZ: 100 on every Linux this runs on (getconf CLK_TCK).
const clkTck = 100

// statusKB reads a "VmRSS:"-like field of /proc/<pid>/status, in KiB.
func statusKB(pid int, field string) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, field+":") {
			v, _ := strconv.ParseInt(strings.Fields(line)[1], 10, 64)
			return v
		}
	}
	return 0
}

type genReport struct {
	Mode           string           `json:"mode"`
	Seconds        float64          `json:"seconds"`
	Sent           int64            `json:"sent"`
	Accepted       int64            `json:"accepted"`
	Rejected       int64            `json:"rejected"`
	Retried        int64            `json:"retried"`
	Failed         int64            `json:"failed"`
	Lines          int64            `json:"statsd_lines"`
	AchievedRate   float64          `json:"achieved_rate"`
	AcceptedByName map[string]int64 `json:"accepted_by_name"`
}

// anvilgen starts bin/anvilgen for path against a; wait() returns its report
// and CPU seconds.
type gen struct {
	cmd *exec.Cmd
	out bytes.Buffer
	err bytes.Buffer
}

func startGen(t *testing.T, path string, a *agent, rate int, d time.Duration, extra ...string) *gen {
	t.Helper()
	bin := os.Getenv("ANVILGEN_BIN")
	if bin == "" {
		bin = filepath.Join(e2etest.RepoRoot(t), "bin", "anvilgen")
	}
	endpoint := map[string]string{
		"anvil":  fmt.Sprintf("http://127.0.0.1:%d", a.ports["ANVIL"]),
		"statsd": fmt.Sprintf("127.0.0.1:%d", a.ports["STATSD"]),
		"otlp":   fmt.Sprintf("http://127.0.0.1:%d", a.ports["OTLP_HTTP"]),
	}[path]
	args := append([]string{"-mode", path, "-endpoint", endpoint, "-rate", itoa(rate), "-duration", d.String(),
		"-nodes", itoa(envInt("BENCH_NODES", 1)), "-json", "-quiet"}, extra...)
	g := &gen{cmd: exec.Command(bin, args...)}
	g.cmd.Stdout, g.cmd.Stderr = &g.out, &g.err
	if err := g.cmd.Start(); err != nil {
		t.Fatalf("start %s (run `make build`): %v", bin, err)
	}
	return g
}

func (g *gen) wait(t *testing.T) (genReport, float64) {
	t.Helper()
	_ = g.cmd.Wait() // exit 1 when events failed: the report says how many
	var r genReport
	if err := json.Unmarshal(g.out.Bytes(), &r); err != nil {
		t.Fatalf("anvilgen report: %v\n%s\n%s", err, g.out.String(), g.err.String())
	}
	st := g.cmd.ProcessState
	return r, (st.UserTime() + st.SystemTime()).Seconds()
}

type row struct {
	path             string
	rate             float64
	cpuPct           float64 // % of one core over the window
	per10k           float64 // % of a core per 10,000 events/s
	rssPeakMiB       float64 // highest VmRSS sampled in the window
	anonPeakMiB      float64 // highest RssAnon in the window (heap, stacks; not the binary's file pages)
	hwmMiB           float64 // VmHWM at the end (peak since start)
	genCPU           float64 // anvilgen's CPU, % of a core
	spilled          float64 // requests write_behind kept only on disk and read back (0 when it stayed in memory)
	wirePerEvent     float64 // bytes the gateway read per accepted event over the window (TLS, compressed)
	accepted, failed int64
}

// measure runs one path on a fresh agent and returns its row.
func measure(t *testing.T, gw *sinkGateway, path string, rate int, warmup, window time.Duration, pprofDir string) row {
	gw.reset()
	a := startAgent(t, gw, pprofDir != "")
	pid := a.cmd.Process.Pid
	total := warmup + window + 2*time.Second
	g := startGen(t, path, a, rate, total)
	time.Sleep(warmup) // the measurement schedule, not a wait for a condition
	var prof chan []byte
	if pprofDir != "" {
		prof = make(chan []byte, 1)
		go func() {
			resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/debug/pprof/profile?seconds=%d", a.pprof, int(window.Seconds())))
			if err != nil {
				prof <- nil
				return
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			prof <- b
		}()
	}
	t0, c0, w0 := time.Now(), cpuTicks(t, pid), gw.wireBytes.Load()
	var peak, peakAnon int64
	tick := time.NewTicker(200 * time.Millisecond)
	for end := t0.Add(window); time.Now().Before(end); {
		<-tick.C
		peak = max(peak, statusKB(pid, "VmRSS"))
		peakAnon = max(peakAnon, statusKB(pid, "RssAnon"))
	}
	tick.Stop()
	c1, t1, w1 := cpuTicks(t, pid), time.Now(), gw.wireBytes.Load()
	hwm := statusKB(pid, "VmHWM")
	rep, genSecs := g.wait(t)
	if prof != nil {
		if b := <-prof; len(b) > 0 {
			_ = os.WriteFile(filepath.Join(pprofDir, "agent-"+path+".pprof"), b, 0o644)
		}
	}
	spilled := agentCounter(a.ports["TELEMETRY"], "otelcol_processor_write_behind_spilled_requests")
	a.stop(t)
	cpu := float64(c1-c0) / clkTck / t1.Sub(t0).Seconds() * 100
	r := row{path: path, rate: rep.AchievedRate, cpuPct: cpu, rssPeakMiB: float64(peak) / 1024, anonPeakMiB: float64(peakAnon) / 1024, hwmMiB: float64(hwm) / 1024,
		genCPU: genSecs / rep.Seconds * 100, accepted: rep.Accepted, failed: rep.Failed, spilled: spilled}
	if rep.AchievedRate > 0 {
		r.per10k = cpu * 10000 / rep.AchievedRate
		r.wirePerEvent = float64(w1-w0) / (rep.AchievedRate * t1.Sub(t0).Seconds())
	}
	if rep.Failed > 0 || rep.Rejected > 0 {
		t.Errorf("%s: anvilgen failed %d, rejected %d events", path, rep.Failed, rep.Rejected)
	}
	return r
}

func TestBenchAgent(t *testing.T) {
	rate := envInt("BENCH_RATE", 10000)
	warmup, window := envDur("BENCH_WARMUP", 5*time.Second), envDur("BENCH_WINDOW", 20*time.Second)
	paths := strings.Split(os.Getenv("BENCH_PATHS"), ",")
	if os.Getenv("BENCH_PATHS") == "" {
		paths = []string{"anvil", "statsd", "otlp"}
	}
	pprofDir := os.Getenv("BENCH_PPROF")
	tlsFiles := e2etest.NewTLS(t)
	gw := newSinkGateway(t, tlsFiles, token)
	gw.start(t)

	var rows []row
	for _, p := range paths {
		rows = append(rows, measure(t, gw, p, rate, warmup, window, pprofDir))
	}
	var b strings.Builder
	host, _ := os.Hostname()
	config := "config/agent.yaml"
	for _, f := range strings.Fields(os.Getenv("BENCH_EXTRA_CONFIG")) {
		config += " + " + filepath.Base(f)
	}
	fmt.Fprintf(&b, "\nwhole agent (%s on %s, TLS + token to a sink gateway), %d events/s target, %v warm-up, %v window, %d CPUs, %s\n",
		filepath.Base(e2etest.AgentBinary(t)), config, rate, warmup, window, runtimeCPUs(), host)
	fmt.Fprintf(&b, "| path | events/s | agent CPU (%% of a core) | %% of a core per 10k events/s | peak RSS in window (MiB) | of it anonymous (MiB) | VmHWM (MiB) | anvilgen CPU (%%) | agent CPU / anvilgen CPU | to gateway (bytes/event) |\n|---|---|---|---|---|---|---|---|---|---|\n")
	by := map[string]row{}
	for _, r := range rows {
		by[r.path] = r
		perGen := 0.0
		if r.genCPU > 0 {
			perGen = r.cpuPct / r.genCPU
		}
		fmt.Fprintf(&b, "| %s | %.0f | %.1f | %.1f | %.0f | %.0f | %.0f | %.1f | %.2f | %.1f |\n", r.path, r.rate, r.cpuPct, r.per10k, r.rssPeakMiB, r.anonPeakMiB, r.hwmMiB, r.genCPU, perGen, r.wirePerEvent)
	}
	for _, r := range rows {
		if r.spilled > 0 {
			fmt.Fprintf(&b, "%s: write_behind kept %.0f requests only on disk (read back): memory_limit_mib was reached\n", r.path, r.spilled)
		}
	}
	if a, ok := by["anvil"]; ok {
		if s, ok := by["statsd"]; ok && s.per10k > 0 {
			fmt.Fprintf(&b, "ratio anvil/statsd (per 10k events/s): %.2fx\n", a.per10k/s.per10k)
		}
	}
	t.Log(b.String())
	fmt.Println(b.String())

	if d := envDur("BENCH_OUTAGE", 60*time.Second); d > 0 {
		outage(t, gw, rate, d, pprofDir)
	}
}

// agentCounter sums a counter's series on the agent's own-telemetry
// endpoint (0 when absent).
func agentCounter(port int, name string) float64 {
	resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/metrics", port))
	if err != nil {
		return 0
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var sum float64
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, name); ok && (strings.HasPrefix(rest, "{") || strings.HasPrefix(rest, " ")) {
			if f := strings.Fields(rest[strings.LastIndex(rest, "}")+1:]); len(f) > 0 {
				v, _ := strconv.ParseFloat(f[0], 64)
				sum += v
			}
		}
	}
	return sum
}

// heapProfile writes the agent's heap profile (live objects at its last GC)
// to file; a failed fetch leaves the last one.
func heapProfile(port int, file string) {
	resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/debug/pprof/heap", port))
	if err != nil {
		return
	}
	defer resp.Body.Close()
	if b, err := io.ReadAll(resp.Body); err == nil && resp.StatusCode == http.StatusOK {
		_ = os.WriteFile(file, b, 0o644)
	}
}

func runtimeCPUs() int {
	b, _ := os.ReadFile("/proc/cpuinfo")
	return strings.Count(string(b), "\nprocessor") + 1
}

// outage: the gateway is unreachable while anvilgen sends at rate for d;
// the agent's RSS must stay bounded (queue on disk, memory_limiter) and,
// once the gateway is back, everything acknowledged must arrive.
func outage(t *testing.T, gw *sinkGateway, rate int, d time.Duration, pprofDir string) {
	gw.stop()
	gw.reset()
	a := startAgent(t, gw, pprofDir != "")
	pid := a.cmd.Process.Pid
	g := startGen(t, "anvil", a, rate, d, "-retry-for", "10m")
	var peak, peakAnon int64
	var rssLine []string
	start := time.Now()
	tick := time.NewTicker(time.Second)
	genDone := make(chan struct{})
	go func() { _ = g.cmd.Wait(); close(genDone) }()
loop:
	for i := 0; ; i++ {
		select {
		case <-genDone:
			break loop
		case <-tick.C:
			rss := statusKB(pid, "VmRSS")
			if rss > peak && pprofDir != "" {
				heapProfile(a.pprof, filepath.Join(pprofDir, "agent-outage-heap.pprof"))
			}
			peak = max(peak, rss)
			peakAnon = max(peakAnon, statusKB(pid, "RssAnon"))
			if i%10 == 9 {
				rssLine = append(rssLine, fmt.Sprintf("%.0fs:%dMiB", time.Since(start).Seconds(), rss/1024))
			}
		}
	}
	tick.Stop()
	var rep genReport
	if err := json.Unmarshal(g.out.Bytes(), &rep); err != nil {
		t.Fatalf("anvilgen report: %v\n%s", err, g.err.String())
	}
	queueBytes := dirSize(filepath.Join(a.dir, "queue"))
	spilled := agentCounter(a.ports["TELEMETRY"], "otelcol_processor_write_behind_spilled_requests")
	down := time.Since(start)

	gw.start(t)
	back := time.Now()
	want := rep.AcceptedByName
	complete := func(s snapshot) bool {
		for name, n := range want {
			if sampled(name) {
				continue
			}
			if s.logs[name] < n {
				return false
			}
			if isSpanEvent(name) && s.spans[strings.TrimSuffix(strings.TrimSuffix(name, ".stop"), ".exception")] < spansWanted(want, name) {
				return false
			}
		}
		return s.submits >= want["anvil.label.submit.stop"]
	}
	var s snapshot
	deadline := back.Add(5 * time.Minute)
	for {
		s = gw.snapshot()
		if complete(s) || time.Now().After(deadline) {
			break
		}
		time.Sleep(500 * time.Millisecond)
	}
	drained := time.Since(back)
	var logsWant, logsGot, dups int64
	for name, n := range want {
		if sampled(name) {
			continue
		}
		logsWant += n
		logsGot += min(s.logs[name], n)
		dups += max(s.logs[name]-n, 0)
	}
	submitsKept := float64(s.logs["anvil.label.submit.stop"]) / float64(max(want["anvil.label.submit.stop"], 1))
	var b strings.Builder
	fmt.Fprintf(&b, "\ngateway down for %.0fs at %d events/s (anvil path): anvilgen sent %d, accepted %d, retried %d requests (429/503), failed %d\n",
		down.Seconds(), rate, rep.Sent, rep.Accepted, rep.Retried, rep.Failed)
	fmt.Fprintf(&b, "agent RSS: peak %d MiB (%s), of it anonymous memory at most %d MiB (the rest: file-backed pages: the binary, and bbolt's mapped file with file_storage); queue on disk %.1f MiB; write_behind kept %.0f requests only on disk\n",
		peak/1024, strings.Join(rssLine, " "), peakAnon/1024, float64(queueBytes)/(1<<20), spilled)
	fmt.Fprintf(&b, "gateway back: after %.1fs delivered %d/%d event logs of unsampled events (%d duplicates), label.submit.count %d/%d, label submit logs kept %.1f%% (sampling rate 10%%)\n",
		drained.Seconds(), logsGot, logsWant, dups, s.submits, want["anvil.label.submit.stop"], submitsKept*100)
	t.Log(b.String())
	fmt.Println(b.String())
	if !complete(s) {
		t.Errorf("not everything acknowledged was delivered within 5 min of the gateway's return")
	}
	if s.unauthorized > 0 {
		t.Errorf("%d calls without the right token", s.unauthorized)
	}
}

// sampled: the agent's sampling block keeps label submits at 10% (everything
// else at 100%).
func sampled(name string) bool {
	return name == "anvil.label.submit.start" || name == "anvil.label.submit.stop"
}

func isSpanEvent(name string) bool {
	return strings.HasSuffix(name, ".stop") || strings.HasSuffix(name, ".exception")
}

// spansWanted: spans named after name's operation (stop and exception events
// of it, the unsampled ones).
func spansWanted(want map[string]int64, name string) int64 {
	op := strings.TrimSuffix(strings.TrimSuffix(name, ".stop"), ".exception")
	var n int64
	for _, s := range []string{".stop", ".exception"} {
		if !sampled(op + s) {
			n += want[op+s]
		}
	}
	return n
}

func dirSize(dir string) int64 {
	var n int64
	_ = filepath.Walk(dir, func(_ string, info os.FileInfo, err error) error {
		if err == nil && !info.IsDir() {
			n += info.Size()
		}
		return nil
	})
	return n
}

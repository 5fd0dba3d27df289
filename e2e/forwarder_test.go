//go:build e2e

package e2e

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"

	"github.com/anvil/anvilcol/internal/e2etest"
)

// elixirDriver runs clients/elixir/e2e/driver.exs (`mix run`), which drives
// AnvilCol.Forwarder one command per line; answers are "E2E ..." lines.
type elixirDriver struct {
	t       *testing.T
	cmd     *exec.Cmd
	stdin   io.WriteCloser
	answers chan string
	mu      sync.Mutex
	log     bytes.Buffer
}

func startElixirDriver(t *testing.T) *elixirDriver {
	t.Helper()
	mix, err := exec.LookPath("mix")
	if err != nil {
		t.Fatalf("mix (Elixir) not found (%v): the forwarder's end-to-end test needs Elixir; `apt-get install elixir` (.ci/run does)", err)
	}
	d := &elixirDriver{t: t, answers: make(chan string, 16)}
	d.cmd = exec.Command(mix, "run", "e2e/driver.exs")
	d.cmd.Dir = filepath.Join(e2etest.RepoRoot(t), "clients", "elixir")
	d.cmd.Env = append(os.Environ(), "MIX_ENV=dev")
	if d.stdin, err = d.cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	stdout, err := d.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	d.cmd.Stderr = &lockedWriter{d: d}
	if err := d.cmd.Start(); err != nil {
		t.Fatalf("mix run e2e/driver.exs: %v", err)
	}
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			line := sc.Text()
			if rest, ok := strings.CutPrefix(line, "E2E "); ok {
				d.answers <- rest
			} else {
				d.mu.Lock()
				d.log.WriteString(line + "\n")
				d.mu.Unlock()
			}
		}
		close(d.answers)
	}()
	t.Cleanup(func() {
		_, _ = io.WriteString(d.stdin, "quit\n")
		_ = d.stdin.Close()
		done := make(chan struct{})
		go func() { _ = d.cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = d.cmd.Process.Kill()
			<-done
		}
		if t.Failed() {
			d.mu.Lock()
			t.Logf("elixir driver output:\n%s", d.log.String())
			d.mu.Unlock()
		}
	})
	return d
}

type lockedWriter struct{ d *elixirDriver }

func (w *lockedWriter) Write(p []byte) (int, error) {
	w.d.mu.Lock()
	defer w.d.mu.Unlock()
	return w.d.log.Write(p)
}

// do sends one command and returns its answer (the first compile of the Mix
// project happens before the first answer, hence the generous timeout).
func (d *elixirDriver) do(format string, args ...any) string {
	d.t.Helper()
	cmd := fmt.Sprintf(format, args...)
	if _, err := io.WriteString(d.stdin, cmd+"\n"); err != nil {
		d.t.Fatalf("driver: %s: %v", cmd, err)
	}
	select {
	case a, ok := <-d.answers:
		if !ok {
			d.t.Fatalf("driver exited during %q", cmd)
		}
		if strings.HasPrefix(a, "error") {
			d.t.Fatalf("driver: %s: %s", cmd, a)
		}
		return a
	case <-time.After(120 * time.Second):
		d.t.Fatalf("driver: no answer to %q in 120s", cmd)
	}
	return ""
}

var statsLine = regexp.MustCompile(`^stats sent=(\d+) dropped=(\d+) rejected=(\d+) retries=(\d+) buffered=(\d+)$`)

type forwarderStats struct{ sent, dropped, rejected, retries, buffered int }

func (d *elixirDriver) stats(name string) forwarderStats {
	d.t.Helper()
	a := d.do("stats %s", name)
	m := statsLine.FindStringSubmatch(a)
	if m == nil {
		d.t.Fatalf("driver: stats answer %q", a)
	}
	n := func(i int) int { v, _ := strconv.Atoi(m[i]); return v }
	return forwarderStats{n(1), n(2), n(3), n(4), n(5)}
}

// faultProxy stands in front of the anvil receiver and answers every other
// request itself, alternately 503 and 429 with Retry-After: 1, without
// forwarding it: what the receiver answers when its pipeline pushes back.
type faultProxy struct {
	*http.Server
	URL              string
	requests, faults atomic.Int64
	gzipped          atomic.Int64
}

func startFaultProxy(t *testing.T, upstream string) *faultProxy {
	t.Helper()
	target, err := url.Parse(upstream)
	if err != nil {
		t.Fatal(err)
	}
	rp := httputil.NewSingleHostReverseProxy(target)
	p := &faultProxy{}
	port := e2etest.FreePort(t)
	p.URL = fmt.Sprintf("http://127.0.0.1:%d", port)
	p.Server = &http.Server{Addr: fmt.Sprintf("127.0.0.1:%d", port), Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := p.requests.Add(1)
		if r.Header.Get("Content-Encoding") == "gzip" {
			p.gzipped.Add(1)
		}
		if n%2 == 1 {
			p.faults.Add(1)
			_, _ = io.Copy(io.Discard, r.Body)
			code := http.StatusServiceUnavailable
			if n%4 == 3 {
				code = http.StatusTooManyRequests
			}
			w.Header().Set("Retry-After", "1")
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(code)
			_, _ = io.WriteString(w, `{"accepted":0,"rejected":0,"errors":[],"error":"injected"}`)
			return
		}
		rp.ServeHTTP(w, r)
	})}
	go func() { _ = p.ListenAndServe() }()
	t.Cleanup(func() { _ = p.Close() })
	return p
}

// counterSum adds the values of the counter family named by prefix whose
// series carry labels (nil: all series); -1 when the family is absent.
func counterSum(t *testing.T, url, prefix string, labels map[string]string) float64 {
	t.Helper()
	fams, err := e2etest.Scrape(t, url)
	if err != nil {
		return -1
	}
	f := family(fams, prefix, dto.MetricType_COUNTER)
	if f == nil {
		return -1
	}
	sum := 0.0
	for _, m := range f.GetMetric() {
		if e2etest.HasLabels(m, labels) {
			sum += m.GetCounter().GetValue()
		}
	}
	return sum
}

// assertCount waits until the counter reaches want, then requires it to be
// exactly want: below is a loss, above a duplicate.
func assertCount(t *testing.T, url, prefix string, labels map[string]string, want float64, what string) {
	t.Helper()
	var got float64
	e2etest.Eventually(t, 60*time.Second, func() bool {
		got = counterSum(t, url, prefix, labels)
		return got >= want
	}, "%s: %s%v reaches %v on %s", what, prefix, labels, want, url)
	if got = counterSum(t, url, prefix, labels); got != want {
		t.Fatalf("%s: %s%v = %v, want exactly %v", what, prefix, labels, got, want)
	}
}

// TestForwarderExactlyOnceThrough503sAndRestart runs AnvilCol.Forwarder
// (clients/elixir) against the built binary on the shipped config/local.yaml
// and counts the events in the binary's own metrics: the receiver's accepted
// log records (one per event) and the catalog counters on the Prometheus
// exporter. Forwarder "a" goes through a proxy answering every other request
// 503/429 + Retry-After; forwarder "b" goes direct, keeps emitting while the
// collector is stopped, and delivers after it is restarted on the same port.
// Each event must be counted exactly once.
func TestForwarderExactlyOnceThrough503sAndRestart(t *testing.T) {
	ports := map[string]int{}
	for _, k := range []string{"ANVIL", "OTLP_GRPC", "OTLP_HTTP", "PROMETHEUS", "HEALTH", "ZPAGES", "TELEMETRY"} {
		ports[k] = e2etest.FreePort(t)
	}
	ports["STATSD"] = e2etest.FreeUDPPort(t)
	env := map[string]string{}
	for k, p := range ports {
		env["ANVILCOL_"+k+"_PORT"] = strconv.Itoa(p)
	}
	startCollector := func() *e2etest.Collector {
		return e2etest.Start(t, e2etest.Options{Config: "config/local.yaml", Env: env, HealthPort: ports["HEALTH"]})
	}
	anvilURL := fmt.Sprintf("http://127.0.0.1:%d", ports["ANVIL"])
	telemetryURL := fmt.Sprintf("http://127.0.0.1:%d/metrics", ports["TELEMETRY"])
	promURL := fmt.Sprintf("http://127.0.0.1:%d/metrics", ports["PROMETHEUS"])
	accepted := func(want float64, what string) {
		t.Helper()
		assertCount(t, telemetryURL, "otelcol_receiver_accepted_log_records", map[string]string{"receiver": "anvil"}, want, what)
	}
	// seq odd: anvil.queue.created; even: anvil.label.submit.stop.
	catalog := func(from, to int, what string) {
		t.Helper()
		odd, even := 0.0, 0.0
		for s := from; s <= to; s++ {
			if s%2 == 1 {
				odd++
			} else {
				even++
			}
		}
		assertCount(t, promURL, "anvil_queue_created_count", nil, odd, what)
		assertCount(t, promURL, "anvil_label_submit_count", map[string]string{"queue_id": "q-e2e", "schema_version_id": "sv-1"}, even, what)
	}

	col := startCollector()
	proxy := startFaultProxy(t, anvilURL)
	drv := startElixirDriver(t)
	// noreport: the forwarders' own anvil.forwarder.report events would add
	// to the exact counts below (they are sent only when a forwarder stops).
	drv.do("start a %s 100 noreport", proxy.URL)
	drv.do("start b %s 500 noreport", anvilURL)

	// Through 503s and 429s: 400 events in 4 batches, each refused once.
	drv.do("emit a 1 400")
	if a := drv.do("flush a 60000"); a != "ok" {
		t.Fatalf("flush a: %s", a)
	}
	sa := drv.stats("a")
	if sa.sent != 400 || sa.dropped != 0 || sa.rejected != 0 || sa.buffered != 0 || int64(sa.retries) != proxy.faults.Load() || sa.retries < 4 {
		t.Fatalf("forwarder a: %+v, want 400 sent and one retry per injected fault (%d)", sa, proxy.faults.Load())
	}
	if proxy.gzipped.Load() == 0 {
		t.Errorf("no gzipped request: batches of 100 events are over 1 KiB")
	}
	accepted(400, "after the 503s")

	// Direct, then the collector goes away while events keep coming.
	drv.do("emit b 401 1000")
	if a := drv.do("flush b 60000"); a != "ok" {
		t.Fatalf("flush b: %s", a)
	}
	accepted(1000, "before the restart")
	catalog(1, 1000, "before the restart")
	if err := col.Stop(); err != nil {
		t.Fatalf("stopping the collector: %v", err)
	}

	drv.do("emit b 1001 1600")
	e2etest.Eventually(t, 30*time.Second, func() bool { return drv.stats("b").retries >= 2 },
		"forwarder b retrying while the collector is down")
	if sb := drv.stats("b"); sb.buffered != 600 || sb.dropped != 0 || sb.sent != 600 {
		t.Fatalf("forwarder b while the collector is down: %+v, want 600 buffered, 600 sent before", sb)
	}

	startCollector()
	if a := drv.do("flush b 60000"); a != "ok" {
		t.Fatalf("flush b after the restart: %s", a)
	}
	sb := drv.stats("b")
	if sb.sent != 1200 || sb.dropped != 0 || sb.rejected != 0 || sb.buffered != 0 {
		t.Fatalf("forwarder b after the restart: %+v, want 1200 sent", sb)
	}
	// The new process counts from zero: exactly the 600 emitted while it was away.
	accepted(600, "after the restart")
	catalog(1001, 1600, "after the restart")
}

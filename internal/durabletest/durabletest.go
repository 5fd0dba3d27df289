// Package durabletest is the in-process harness for the exporters' durability
// tests (foundation, aitrace): a component.Host that provides extensions, a
// real file_storage extension on a directory that outlives one exporter
// instance, and an HTTP intake that can be down (nothing listening on its
// address) and brought up later on the same address (at once, or when a
// condition such as a counted failed attempt holds); Restart ties them
// together for one exporter.
package durabletest // import "github.com/anvil/anvilcol/internal/durabletest"

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/open-telemetry/opentelemetry-collector-contrib/extension/storage/filestorage"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/extension"
	"go.opentelemetry.io/collector/extension/extensiontest"

	"github.com/anvil/anvilcol/internal/httpexport"
)

// StorageID is the ID the file_storage extension is registered under.
var StorageID = component.MustNewID("file_storage")

// Host is a component.Host serving a fixed set of extensions.
type Host struct {
	Extensions map[component.ID]component.Component
}

// GetExtensions implements component.Host.
func (h *Host) GetExtensions() map[component.ID]component.Component { return h.Extensions }

// StartFileStorage starts a file_storage extension keeping its files in dir
// and returns it with a Host that provides it (plus extra extensions). Call
// Shutdown on the extension to simulate the collector stopping; start a new
// one on the same dir to simulate the restart.
func StartFileStorage(t testing.TB, dir string, extra map[component.ID]component.Component) (extension.Extension, *Host) {
	t.Helper()
	f := filestorage.NewFactory()
	cfg := f.CreateDefaultConfig().(*filestorage.Config)
	cfg.Directory = dir
	ext, err := f.Create(context.Background(), extensiontest.NewNopSettings(f.Type()), cfg)
	if err != nil {
		t.Fatalf("durabletest: creating file_storage: %v", err)
	}
	h := &Host{Extensions: map[component.ID]component.Component{StorageID: ext}}
	for id, c := range extra {
		h.Extensions[id] = c
	}
	if err := ext.Start(context.Background(), h); err != nil {
		t.Fatalf("durabletest: starting file_storage: %v", err)
	}
	return ext, h
}

// ReserveAddr returns a loopback address with nothing listening on it: an
// endpoint that is "down" (connections are refused) until Up is called.
func ReserveAddr(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	_ = l.Close()
	return addr
}

// Up starts an HTTP server with handler on addr (retrying briefly while the
// port is in TIME_WAIT or similar) and closes it at the end of the test.
func Up(t testing.TB, addr string, handler http.Handler) *httptest.Server {
	t.Helper()
	var l net.Listener
	var err error
	for deadline := time.Now().Add(5 * time.Second); ; {
		if l, err = net.Listen("tcp", addr); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("durabletest: cannot listen on %s again: %v", addr, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	srv := httptest.NewUnstartedServer(handler)
	srv.Listener = l
	srv.Start()
	t.Cleanup(srv.Close)
	return srv
}

// ConfigureRestart sets an HTTP exporter's transport settings for the
// restart scenario: endpoint http://addr (see ReserveAddr) with a 2s
// timeout, retries every 20ms to 100ms until the exporter is shut down, and a
// sending queue with 2 consumers, persistent on StorageID if persistent (else
// the in-memory queue, the control case).
func ConfigureRestart(cfg *httpexport.Config, addr string, persistent bool) {
	cfg.ClientConfig.Endpoint = "http://" + addr
	cfg.ClientConfig.Timeout = 2 * time.Second
	cfg.RetryConfig.InitialInterval = 20 * time.Millisecond
	cfg.RetryConfig.MaxInterval = 100 * time.Millisecond
	cfg.RetryConfig.MaxElapsedTime = 0 // retry until shut down
	q := cfg.QueueConfig.GetOrInsertDefault()
	if persistent {
		q.StorageID = &StorageID
	}
	q.NumConsumers = 2
}

// Restart is the restart scenario of one HTTP exporter: a storage directory
// that outlives each run's file_storage, and an endpoint that is down until
// Up.
type Restart struct {
	t    testing.TB
	dir  string
	addr string
	ext  extension.Extension // the running file_storage, if any
}

// NewRestart reserves the down endpoint and the storage directory and
// configures cfg for them (ConfigureRestart).
func NewRestart(t testing.TB, cfg *httpexport.Config, persistent bool) *Restart {
	r := &Restart{t: t, dir: t.TempDir(), addr: ReserveAddr(t)}
	ConfigureRestart(cfg, r.addr, persistent)
	t.Cleanup(r.StopStorage)
	return r
}

// StartStorage starts a file_storage on the directory (a run of the
// collector) and returns a host that provides it.
func (r *Restart) StartStorage() *Host {
	ext, host := StartFileStorage(r.t, r.dir, nil)
	r.ext = ext
	return host
}

// StopStorage shuts the running file_storage down (the collector stops; shut
// the exporters down first). It also runs at the end of the test.
func (r *Restart) StopStorage() {
	if r.ext == nil {
		return
	}
	if err := r.ext.Shutdown(context.Background()); err != nil {
		r.t.Errorf("durabletest: shutting file_storage down: %v", err)
	}
	r.ext = nil
}

// Up brings the endpoint up with handler (see Up).
func (r *Restart) Up(handler http.Handler) *httptest.Server { return Up(r.t, r.addr, handler) }

// UpWhen brings handler up on addr (Up) once cond holds, polling it in the
// background: e.g. once the exporter has counted its first refused
// attempt, so the test sees a retry succeed without guessing how long the
// first attempt takes. It returns at once.
func UpWhen(t testing.TB, addr string, handler http.Handler, cond func() bool) {
	go func() {
		deadline := time.Now().Add(10 * time.Second)
		for !cond() {
			if time.Now().After(deadline) {
				t.Errorf("durabletest: the condition to bring %s up never held", addr)
				return
			}
			time.Sleep(5 * time.Millisecond) // polling cond, not a guess at timing
		}
		Up(t, addr, handler)
	}()
}

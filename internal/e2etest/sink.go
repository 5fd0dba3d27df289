package e2etest

import (
	"bytes"
	"compress/gzip"
	"compress/zlib"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"
)

// Request is one HTTP request an intake received, body already decompressed.
type Request struct {
	// Seq is the request's position in arrival order: 1 for the first request
	// the intake received, 2 for the second, and so on.
	Seq int
	// At is when the intake had read the request.
	At     time.Time
	Method string
	Path   string
	Header http.Header
	Body   []byte
}

// Intake is an httptest server on loopback that records every request and
// answers with a status chosen by the test (default 200 with body "{}").
//
// The zero Intake is a usable http.Handler with no server: to serve it on an
// address of the test's choosing, set Respond first, then start a server with
// the Intake as handler and store it in Server (see durabletest.Up).
type Intake struct {
	*httptest.Server
	mu       sync.Mutex
	requests []Request
	respond  func(r Request) (int, http.Header, []byte)
}

// NewIntake starts a recording HTTP server; it is closed at the end of the test.
func NewIntake(t testing.TB) *Intake {
	t.Helper()
	in := &Intake{}
	in.Server = httptest.NewServer(in)
	t.Cleanup(in.Close)
	return in
}

// Respond sets how the intake answers (status, headers, body) per request.
func (in *Intake) Respond(f func(r Request) (int, http.Header, []byte)) {
	in.mu.Lock()
	defer in.mu.Unlock()
	in.respond = f
}

// ServeHTTP records r (body decompressed; 400 if that fails) and answers it
// as set by Respond.
func (in *Intake) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := ReadBody(r)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	req := Request{At: time.Now(), Method: r.Method, Path: r.URL.Path, Header: r.Header.Clone(), Body: body}
	in.mu.Lock()
	req.Seq = len(in.requests) + 1
	in.requests = append(in.requests, req)
	respond := in.respond
	in.mu.Unlock()
	code, hdr, out := http.StatusOK, http.Header(nil), []byte("{}")
	if respond != nil {
		code, hdr, out = respond(req)
	}
	for k, vs := range hdr {
		for _, v := range vs {
			w.Header().Add(k, v)
		}
	}
	if w.Header().Get("Content-Type") == "" {
		w.Header().Set("Content-Type", "application/json")
	}
	w.WriteHeader(code)
	_, _ = w.Write(out)
}

// Requests returns a copy of the requests received so far.
func (in *Intake) Requests() []Request {
	in.mu.Lock()
	defer in.mu.Unlock()
	return append([]Request(nil), in.requests...)
}

// RequestsTo returns the requests whose path has the given prefix.
func (in *Intake) RequestsTo(pathPrefix string) []Request {
	var out []Request
	for _, r := range in.Requests() {
		if strings.HasPrefix(r.Path, pathPrefix) {
			out = append(out, r)
		}
	}
	return out
}

// ReadBody reads a request body, undoing gzip, deflate/zlib or zstd
// Content-Encoding.
func ReadBody(r *http.Request) ([]byte, error) {
	raw, err := io.ReadAll(r.Body)
	if err != nil {
		return nil, err
	}
	switch r.Header.Get("Content-Encoding") {
	case "gzip":
		zr, err := gzip.NewReader(bytes.NewReader(raw))
		if err != nil {
			return nil, err
		}
		return io.ReadAll(zr)
	case "deflate":
		zr, err := zlib.NewReader(bytes.NewReader(raw))
		if err != nil {
			return nil, err
		}
		return io.ReadAll(zr)
	case "zstd":
		zr, err := zstd.NewReader(bytes.NewReader(raw))
		if err != nil {
			return nil, err
		}
		defer zr.Close()
		return io.ReadAll(zr)
	}
	return raw, nil
}

// RespondDecoded makes in answer like a service that parses every request
// with decode: a request decode rejects is answered 400 with decode's error,
// any other as answer says for the decoded value.
func RespondDecoded[T any](in *Intake, decode func(Request) (T, error), answer func(T) (int, http.Header, []byte)) {
	in.Respond(func(r Request) (int, http.Header, []byte) {
		v, err := decode(r)
		if err != nil {
			return http.StatusBadRequest, nil, []byte("cannot decode the request: " + err.Error())
		}
		return answer(v)
	})
}

// DecodeAll returns decode of each of reqs in order, leaving out those it
// rejects (the ones RespondDecoded answered 400).
func DecodeAll[T any](reqs []Request, decode func(Request) (T, error)) []T {
	var out []T
	for _, r := range reqs {
		if v, err := decode(r); err == nil {
			out = append(out, v)
		}
	}
	return out
}

package e2etest

import (
	"bytes"
	"compress/gzip"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestIntakeNumbersRequestsAndDecompresses(t *testing.T) {
	in := NewIntake(t)
	in.Respond(func(r Request) (int, http.Header, []byte) {
		if r.Seq == 2 {
			return http.StatusServiceUnavailable, nil, []byte("later")
		}
		return http.StatusOK, nil, r.Body
	})
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	_, _ = zw.Write([]byte("second"))
	_ = zw.Close()
	bodies := []struct {
		body     []byte
		encoding string
	}{{[]byte("first"), ""}, {gz.Bytes(), "gzip"}, {[]byte("third"), ""}}
	var codes []int
	for _, b := range bodies {
		req, _ := http.NewRequest(http.MethodPost, in.URL+"/v1/x", bytes.NewReader(b.body))
		if b.encoding != "" {
			req.Header.Set("Content-Encoding", b.encoding)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_ = resp.Body.Close()
		codes = append(codes, resp.StatusCode)
	}
	if codes[0] != 200 || codes[1] != 503 || codes[2] != 200 {
		t.Errorf("status codes %v, want [200 503 200]", codes)
	}
	reqs := in.RequestsTo("/v1/")
	if len(reqs) != 3 {
		t.Fatalf("%d requests recorded", len(reqs))
	}
	for i, want := range []string{"first", "second", "third"} {
		if reqs[i].Seq != i+1 || string(reqs[i].Body) != want {
			t.Errorf("request %d: Seq %d body %q, want Seq %d body %q", i, reqs[i].Seq, reqs[i].Body, i+1, want)
		}
		if reqs[i].At.IsZero() || (i > 0 && reqs[i].At.Before(reqs[i-1].At)) {
			t.Errorf("request %d: arrival time %v not after the previous one", i, reqs[i].At)
		}
	}
}

func TestZeroIntakeServesOnAnyServer(t *testing.T) {
	in := new(Intake)
	in.Respond(func(Request) (int, http.Header, []byte) { return http.StatusAccepted, nil, nil })
	srv := httptest.NewServer(in)
	t.Cleanup(srv.Close)
	resp, err := http.Post(srv.URL+"/a", "text/plain", bytes.NewReader([]byte("x")))
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		t.Errorf("status %d, want the Respond answer 202", resp.StatusCode)
	}
	if r := in.Requests(); len(r) != 1 || r[0].Seq != 1 || r[0].Path != "/a" {
		t.Errorf("recorded %+v", r)
	}
}

func TestRespondDecodedAnswers400ToWhatDecodeRejects(t *testing.T) {
	in := NewIntake(t)
	decode := func(r Request) (string, error) {
		if !bytes.HasPrefix(r.Body, []byte("ok:")) {
			return "", errors.New("no ok: prefix")
		}
		return string(r.Body[3:]), nil
	}
	RespondDecoded(in, decode, func(v string) (int, http.Header, []byte) {
		return http.StatusCreated, nil, []byte(v)
	})
	for _, body := range []string{"ok:a", "junk", "ok:b"} {
		resp, err := http.Post(in.URL, "text/plain", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		got, _ := io.ReadAll(resp.Body)
		_ = resp.Body.Close()
		want := http.StatusCreated
		if body == "junk" {
			want = http.StatusBadRequest
			if !strings.Contains(string(got), "no ok: prefix") {
				t.Errorf("400 body %q does not name the problem", got)
			}
		}
		if resp.StatusCode != want {
			t.Errorf("%q: HTTP %d, want %d", body, resp.StatusCode, want)
		}
	}
	if got := DecodeAll(in.Requests(), decode); len(got) != 2 || got[0] != "a" || got[1] != "b" {
		t.Errorf("DecodeAll = %q, want [a b]", got)
	}
}

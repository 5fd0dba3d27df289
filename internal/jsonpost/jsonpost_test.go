package jsonpost

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/collector/consumer/consumererror"

	"github.com/anvil/anvilcol/internal/httpstatus"
)

// intake records the item lists it receives; answer decides the status from them.
type intake struct {
	mu     sync.Mutex
	got    [][]int
	answer func(items []int) (int, http.Header)
}

func (in *intake) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var items []int
	b, _ := io.ReadAll(r.Body)
	if err := json.Unmarshal(b, &items); err != nil || r.Header.Get("Content-Type") != "application/json" {
		w.WriteHeader(http.StatusTeapot)
		return
	}
	in.mu.Lock()
	in.got = append(in.got, items)
	in.mu.Unlock()
	code, hdr := in.answer(items)
	for k, v := range hdr {
		w.Header()[k] = v
	}
	w.WriteHeader(code)
	_, _ = w.Write([]byte(strings.Repeat("x", 600)))
}

func encodeInts(lo, hi int) ([]byte, error) {
	s := make([]int, 0, hi-lo)
	for i := lo; i < hi; i++ {
		s = append(s, i)
	}
	return json.Marshal(s)
}

func start(t *testing.T, answer func(items []int) (int, http.Header)) (*intake, *httptest.Server, *Client, map[Outcome]int) {
	in := &intake{answer: answer}
	srv := httptest.NewServer(in)
	t.Cleanup(srv.Close)
	outcomes := map[Outcome]int{}
	var mu sync.Mutex
	c := &Client{HTTP: srv.Client(), Observe: func(_ context.Context, o Outcome, _ int) {
		mu.Lock()
		outcomes[o]++
		mu.Unlock()
	}}
	return in, srv, c, outcomes
}

func TestSendChunksByMax(t *testing.T) {
	in, srv, c, _ := start(t, func([]int) (int, http.Header) { return 200, nil })
	res := c.Send(context.Background(), srv.URL, nil, 7, 3, encodeInts)
	if res.Err != nil || res.Delivered != 7 || res.Rejected != 0 || res.Resume != 7 {
		t.Fatalf("result = %+v", res)
	}
	if got := len(in.got); got != 3 || len(in.got[0]) != 3 || len(in.got[2]) != 1 || in.got[2][0] != 6 {
		t.Fatalf("requests = %v", in.got)
	}
}

func TestSendSplitsOn413(t *testing.T) {
	// The server takes at most 2 items per request and refuses item 5 alone.
	in, srv, c, outcomes := start(t, func(items []int) (int, http.Header) {
		if len(items) > 2 {
			return http.StatusRequestEntityTooLarge, nil
		}
		if len(items) == 1 && items[0] == 5 {
			return http.StatusRequestEntityTooLarge, nil
		}
		if len(items) == 2 && items[1] == 5 {
			return http.StatusRequestEntityTooLarge, nil
		}
		return 200, nil
	})
	res := c.Send(context.Background(), srv.URL, nil, 8, 8, encodeInts)
	if res.Err != nil || res.Delivered != 7 || res.Rejected != 1 || res.Resume != 8 {
		t.Fatalf("result = %+v, requests %v", res, in.got)
	}
	seen := map[int]int{}
	for _, r := range in.got {
		if len(r) <= 2 && !(len(r) == 1 && r[0] == 5) && !(len(r) == 2 && r[1] == 5) {
			for _, i := range r {
				seen[i]++
			}
		}
	}
	for i := 0; i < 8; i++ {
		if i != 5 && seen[i] != 1 {
			t.Errorf("item %d delivered %d times (requests %v)", i, seen[i], in.got)
		}
	}
	if !errors.Is(res.Rejection, httpstatus.ErrTooLarge) {
		t.Errorf("rejection = %v, want ErrTooLarge", res.Rejection)
	}
	if !consumererror.IsPermanent(res.PermanentError()) {
		t.Error("PermanentError is not permanent")
	}
	if outcomes[OutcomeTooLarge] == 0 || outcomes[OutcomeSuccess] == 0 {
		t.Errorf("outcomes = %v", outcomes)
	}
}

func TestSendStopsAtRetryableAndHonoursRetryAfter(t *testing.T) {
	_, srv, c, _ := start(t, func(items []int) (int, http.Header) {
		if items[0] >= 4 {
			return http.StatusServiceUnavailable, http.Header{"Retry-After": {"7"}}
		}
		return 200, nil
	})
	res := c.Send(context.Background(), srv.URL, nil, 10, 2, encodeInts)
	if res.Resume != 4 || res.Delivered != 4 || res.Err == nil {
		t.Fatalf("result = %+v", res)
	}
	if consumererror.IsPermanent(res.Err) {
		t.Fatal("503 must be retryable")
	}
	// exporterhelper's throttle error is unexported; its message carries the delay.
	if !strings.HasPrefix(res.Err.Error(), "Throttle (7s)") {
		t.Fatalf("err %q is not a 7s throttle retry", res.Err)
	}
}

func TestSendRejectsOther4xxAndContinues(t *testing.T) {
	_, srv, c, outcomes := start(t, func(items []int) (int, http.Header) {
		if items[0] == 0 {
			return http.StatusBadRequest, nil
		}
		return 200, nil
	})
	res := c.Send(context.Background(), srv.URL, nil, 4, 2, encodeInts)
	if res.Err != nil || res.Delivered != 2 || res.Rejected != 2 || res.Resume != 4 {
		t.Fatalf("result = %+v", res)
	}
	if StatusCode(res.Rejection) != 400 || len(BodyExcerpt(res.Rejection)) != httpstatus.MaxBodyExcerpt {
		t.Fatalf("rejection %v: code %d, excerpt %d bytes", res.Rejection, StatusCode(res.Rejection), len(BodyExcerpt(res.Rejection)))
	}
	if outcomes[OutcomeRejected] != 1 {
		t.Errorf("outcomes = %v", outcomes)
	}
}

func TestSendNetworkErrorIsRetryable(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	u := srv.URL
	srv.Close()
	var got Outcome
	c := &Client{HTTP: &http.Client{Timeout: 2 * time.Second}, Observe: func(_ context.Context, o Outcome, _ int) { got = o }}
	res := c.Send(context.Background(), u, nil, 3, 0, encodeInts)
	if res.Err == nil || res.Resume != 0 || consumererror.IsPermanent(res.Err) || got != OutcomeNetworkError {
		t.Fatalf("result = %+v outcome %s", res, got)
	}
	if !strings.Contains(res.Err.Error(), u) {
		t.Errorf("error %q does not name the URL", res.Err)
	}
}

func TestPostSendsHeaders(t *testing.T) {
	var hdr http.Header
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { hdr = r.Header.Clone() }))
	defer srv.Close()
	c := &Client{HTTP: srv.Client(), UserAgent: "anvilcol/test"}
	o, err := c.Post(context.Background(), srv.URL, []byte("{}"), http.Header{"Idempotency-Key": {"e" + strconv.Itoa(1)}})
	if err != nil || o != OutcomeSuccess {
		t.Fatal(o, err)
	}
	if hdr.Get("Idempotency-Key") != "e1" || hdr.Get("User-Agent") != "anvilcol/test" || hdr.Get("Content-Type") != "application/json" {
		t.Fatalf("headers = %v", hdr)
	}
}

package anvilreceiver // import "github.com/anvil/anvilcol/receiver/anvilreceiver"

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"sync"

	"go.opentelemetry.io/collector/consumer/consumererror"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Content types of the v1 protocol.
const (
	contentTypeJSON   = "application/json"
	contentTypeNDJSON = "application/x-ndjson"
)

// maxErrorsAnswered caps the per-event errors in one answer.
const maxErrorsAnswered = 100

// retryAfterSeconds is the Retry-After of a 429/503 answer: when the next
// consumer refuses data (e.g. memory_limiter), a second later is a fair retry.
const retryAfterSeconds = "1"

// memoryLimiterRefusal is the text of memory_limiter's ErrDataRefused (an
// internal package of the collector): such refusals are answered 429.
const memoryLimiterRefusal = "data refused due to high memory usage"

// response is the JSON answer of /v1/events.
type response struct {
	Accepted int          `json:"accepted"`
	Rejected int          `json:"rejected"`
	Error    string       `json:"error,omitempty"`
	Errors   []eventError `json:"errors"`
}

// maxPooledBody keeps huge bodies from pinning memory in the free list.
const maxPooledBody = 4 << 20

func (r *anvilReceiver) handleEvents(w http.ResponseWriter, req *http.Request) {
	ctx := req.Context()
	if req.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		r.answer(ctx, w, http.StatusMethodNotAllowed, &response{Error: req.Method + " is not allowed: POST events to " + EventsPath})
		return
	}
	mt, _, _ := mime.ParseMediaType(req.Header.Get("Content-Type"))
	if mt != contentTypeJSON && mt != contentTypeNDJSON {
		r.answer(ctx, w, http.StatusUnsupportedMediaType, &response{Error: fmt.Sprintf(
			"unsupported Content-Type %q: want %s or %s", req.Header.Get("Content-Type"), contentTypeJSON, contentTypeNDJSON)})
		return
	}
	buf := bodies.get()
	buf.Reset()
	defer func() {
		if buf.Cap() <= maxPooledBody {
			bodies.put(buf)
		}
	}()
	if n := req.ContentLength; n > 0 && n < maxPooledBody {
		buf.Grow(int(n) + bytes.MinRead) // one read to EOF, no regrowth
	}
	if _, err := buf.ReadFrom(req.Body); err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			r.answer(ctx, w, http.StatusRequestEntityTooLarge, &response{Error: fmt.Sprintf(
				"body larger than max_request_body_size (%d bytes): split the batch", tooLarge.Limit)})
			return
		}
		r.answer(ctx, w, http.StatusBadRequest, &response{Error: "reading the body: " + err.Error()})
		return
	}

	sc := r.scratch.get()
	defer func() {
		sc.batch.reset()
		sc.stage.reset()
		clear(sc.ids)
		r.scratch.put(sc)
	}()
	b := &sc.batch
	var err error
	if mt == contentTypeNDJSON {
		err = sc.dec.decodeNDJSON(buf.Bytes(), b)
	} else {
		err = sc.dec.decodeJSON(buf.Bytes(), b)
	}
	if err != nil {
		var re *requestError
		if errors.As(err, &re) {
			r.answer(ctx, w, re.status, &response{Error: re.msg})
			return
		}
		r.answer(ctx, w, http.StatusBadRequest, &response{Error: err.Error()})
		return
	}
	r.count(ctx, b)
	resp := &response{Accepted: len(b.events), Rejected: len(b.errors), Errors: b.errors}
	if len(resp.Errors) > maxErrorsAnswered {
		resp.Errors = resp.Errors[:maxErrorsAnswered]
	}
	if b.total == 0 {
		resp.Error = "the body holds no events"
		r.answer(ctx, w, http.StatusBadRequest, resp)
		return
	}
	if len(b.events) == 0 {
		resp.Error = fmt.Sprintf("no valid event: %d rejected", len(b.errors))
		r.answer(ctx, w, http.StatusBadRequest, resp)
		return
	}
	if code, err := r.consume(ctx, sc); err != nil {
		if code == http.StatusTooManyRequests || code == http.StatusServiceUnavailable {
			w.Header().Set("Retry-After", retryAfterSeconds)
		}
		resp.Accepted, resp.Rejected, resp.Errors = 0, b.total, nil
		resp.Error = "the pipeline refused the events: " + err.Error()
		r.answer(ctx, w, code, resp)
		return
	}
	r.answer(ctx, w, http.StatusOK, resp)
}

// consume hands a decoded batch to the pipelines: spans, then logs, then (once
// both were accepted) the metric aggregation. It returns the HTTP status for a
// refusal.
func (r *anvilReceiver) consume(ctx context.Context, sc *requestScratch) (int, error) {
	b := &sc.batch
	now := pcommon.NewTimestampFromTime(r.clk.Now())
	resource, resKey := r.requestResource(b)
	if r.nextMetrics != nil {
		for i := range b.events {
			r.agg.stageEvent(&sc.stage, &b.events[i])
		}
	}
	if r.nextTraces != nil || r.nextLogs != nil {
		if cap(sc.ids) < len(b.events) {
			sc.ids = make([]ids, len(b.events))
		}
		sc.ids = sc.ids[:len(b.events)]
		for i := range b.events {
			sc.ids[i] = traceContext(&b.events[i], b.events[i].lc)
			restoreTraceKeys(&b.events[i], sc.ids[i].used)
		}
	}
	if r.nextTraces != nil {
		td := buildTraces(b, sc.ids, resource, r.scope, r.native, now)
		if n := td.SpanCount(); n > 0 {
			octx := r.obsrep.StartTracesOp(ctx)
			err := r.nextTraces.ConsumeTraces(octx, td)
			r.obsrep.EndTracesOp(octx, dataFormat, n, err)
			if err != nil {
				return refusalStatus(err), err
			}
		}
	}
	if r.nextLogs != nil {
		ld := buildLogs(b, sc.ids, resource, r.scope, now)
		n := ld.LogRecordCount()
		octx := r.obsrep.StartLogsOp(ctx)
		err := r.nextLogs.ConsumeLogs(octx, ld)
		r.obsrep.EndLogsOp(octx, dataFormat, n, err)
		if err != nil {
			return refusalStatus(err), err
		}
	}
	if r.nextMetrics != nil {
		r.agg.apply(&sc.stage, resKey, func() pcommon.Map {
			m := pcommon.NewMap()
			resource.CopyTo(m)
			return m
		}, r.clk.Now())
		r.countMissing(ctx, &sc.stage)
	}
	return http.StatusOK, nil
}

// refusalStatus maps a consumer's error to an answer: retryable refusals are
// 429 (resource exhausted, memory_limiter) or 503, permanent ones 500.
func refusalStatus(err error) int {
	if consumererror.IsPermanent(err) {
		return http.StatusInternalServerError
	}
	if s, ok := status.FromError(err); ok && s.Code() == codes.ResourceExhausted {
		return http.StatusTooManyRequests
	}
	if code := consumererror.ToHTTPStatus(err); code == http.StatusTooManyRequests {
		return code
	}
	if strings.Contains(err.Error(), memoryLimiterRefusal) {
		return http.StatusTooManyRequests
	}
	return http.StatusServiceUnavailable
}

func (r *anvilReceiver) answer(ctx context.Context, w http.ResponseWriter, code int, resp *response) {
	if resp.Errors == nil {
		resp.Errors = []eventError{}
	}
	body, err := json.Marshal(resp)
	if err != nil { // cannot happen: strings and ints only
		body = []byte(`{"error":"failed to encode the answer"}`)
	}
	w.Header().Set("Content-Type", contentTypeJSON)
	w.WriteHeader(code)
	_, _ = w.Write(body)
	r.telemetry.ReceiverAnvilRequests.Add(ctx, 1, metric.WithAttributeSet(codeAttrs(code)))
}

var codeSets sync.Map // int -> attribute.Set

func codeAttrs(code int) attribute.Set {
	if s, ok := codeSets.Load(code); ok {
		return s.(attribute.Set)
	}
	s := attribute.NewSet(attribute.String("code", strconv.Itoa(code)))
	codeSets.Store(code, s)
	return s
}

// errorHandler answers errors raised before the handler (401 from the auth
// extension, bad Content-Encoding) in the protocol's JSON shape.
func errorHandler(w http.ResponseWriter, _ *http.Request, errMsg string, statusCode int) {
	body, _ := json.Marshal(&response{Error: errMsg, Errors: []eventError{}})
	w.Header().Set("Content-Type", contentTypeJSON)
	w.WriteHeader(statusCode)
	_, _ = w.Write(body)
}

// Package jsonpost sends JSON request bodies to an HTTP intake for the anvilcol
// exporters that speak JSON over HTTP (foundation, aitrace): one POST with the
// status mapping of internal/httpstatus, and the "split on 413" loop that sends
// n items in requests of at most max items, halving a request the server found
// too large. It is written once here so both exporters behave the same.
package jsonpost // import "github.com/anvil/anvilcol/internal/jsonpost"

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"

	"go.opentelemetry.io/collector/consumer/consumererror"

	"github.com/anvil/anvilcol/internal/httpstatus"
)

// Outcome classifies one HTTP request for the exporters' own telemetry
// (a low-cardinality attribute value).
type Outcome string

const (
	// OutcomeSuccess is a 2xx answer.
	OutcomeSuccess Outcome = "success"
	// OutcomeRetryable is a 408, 429 or 5xx answer.
	OutcomeRetryable Outcome = "retryable"
	// OutcomeTooLarge is a 413 answer (the request is split and re-sent).
	OutcomeTooLarge Outcome = "too_large"
	// OutcomeRejected is any other non-2xx answer: a permanent refusal.
	OutcomeRejected Outcome = "rejected"
	// OutcomeNetworkError is a request that got no answer (refused, reset, timeout).
	OutcomeNetworkError Outcome = "network_error"
)

// Client posts JSON bodies. HTTP is the client built by confighttp
// (compression, headers, auth, TLS and timeout are applied by its transport).
type Client struct {
	HTTP      *http.Client
	UserAgent string
	// Observe, when set, is called once per HTTP request with its outcome and
	// the number of items the request carried.
	Observe func(ctx context.Context, o Outcome, items int)
}

// Post sends body to url with Content-Type application/json and the extra
// headers. It returns nil for a 2xx answer, a *httpstatus.StatusError (use
// errors.As) for any other status, and the transport error when no answer came.
func (c *Client) Post(ctx context.Context, u string, body []byte, header http.Header) (Outcome, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, bytes.NewReader(body))
	if err != nil {
		return OutcomeRejected, fmt.Errorf("building request for %s: %w", u, err)
	}
	for k, vs := range header {
		for _, v := range vs {
			req.Header.Add(k, v)
		}
	}
	req.Header.Set("Content-Type", "application/json")
	if c.UserAgent != "" {
		req.Header.Set("User-Agent", c.UserAgent)
	}
	resp, err := c.HTTP.Do(req)
	if err != nil {
		var urlErr *url.Error
		if errors.As(err, &urlErr) {
			urlErr.URL = u
		}
		return OutcomeNetworkError, fmt.Errorf("POST %s: %w", u, err)
	}
	defer resp.Body.Close()
	se := httpstatus.FromResponse(resp)
	switch {
	case se == nil:
		return OutcomeSuccess, nil
	case se.Code == http.StatusRequestEntityTooLarge:
		return OutcomeTooLarge, se
	case httpstatus.Retryable(se.Code):
		return OutcomeRetryable, se
	default:
		return OutcomeRejected, se
	}
}

// Result is what Send achieved.
type Result struct {
	// Delivered counts the items acknowledged with a 2xx answer.
	Delivered int
	// Rejected counts the items refused permanently: a 4xx answer other than
	// 413/429, a 413 for a single item, or a body that could not be encoded.
	Rejected int
	// Rejection is the last permanent refusal (status and body excerpt), for
	// the caller's rate-limited log; nil when nothing was rejected.
	Rejection error
	// Resume is the index of the first item neither delivered nor rejected:
	// n when sending finished, else where Err stopped it. Items before Resume
	// must not be sent again.
	Resume int
	// Err is the retryable error that stopped sending (network error,
	// 408, 429, 5xx, honouring Retry-After via httpstatus.ExporterError); nil
	// when every item was delivered or rejected.
	Err error
}

// Send posts items [0, n) to u in requests of at most max items (max <= 0:
// all in one). encode(lo, hi) builds the body for items [lo, hi). A request
// answered 413 is split into halves that are sent in turn, recursively; a
// single item answered 413 is rejected. Sending stops at the first retryable
// failure; permanent refusals are counted and sending continues.
func (c *Client) Send(ctx context.Context, u string, header http.Header, n, max int, encode func(lo, hi int) ([]byte, error)) Result {
	if max <= 0 {
		max = n
	}
	res := Result{}
	for lo := 0; lo < n; lo += max {
		hi := min(lo+max, n)
		if stopped := c.sendRange(ctx, u, header, lo, hi, encode, &res); stopped {
			return res
		}
	}
	res.Resume = n
	return res
}

// sendRange sends [lo, hi), splitting on 413; it reports true when a
// retryable error stopped sending (res.Resume and res.Err set).
func (c *Client) sendRange(ctx context.Context, u string, header http.Header, lo, hi int, encode func(lo, hi int) ([]byte, error), res *Result) bool {
	body, err := encode(lo, hi)
	if err != nil {
		res.Rejected += hi - lo
		res.Rejection = fmt.Errorf("encoding items [%d, %d): %w", lo, hi, err)
		return false
	}
	outcome, err := c.Post(ctx, u, body, header)
	if c.Observe != nil {
		c.Observe(ctx, outcome, hi-lo)
	}
	switch outcome {
	case OutcomeSuccess:
		res.Delivered += hi - lo
		return false
	case OutcomeTooLarge:
		if hi-lo > 1 {
			mid := lo + (hi-lo)/2
			if c.sendRange(ctx, u, header, lo, mid, encode, res) {
				return true
			}
			return c.sendRange(ctx, u, header, mid, hi, encode, res)
		}
		res.Rejected++
		res.Rejection = err
		return false
	case OutcomeRejected:
		res.Rejected += hi - lo
		res.Rejection = err
		return false
	}
	// Retryable status or network error: stop here, the caller retries from lo.
	res.Resume = lo
	var se *httpstatus.StatusError
	if errors.As(err, &se) {
		res.Err = httpstatus.ExporterError(se)
	} else {
		res.Err = err
	}
	return true
}

// PermanentError returns the error an exporter reports for items refused
// permanently, so exporterhelper counts them as failed and does not retry.
func (r Result) PermanentError() error {
	if r.Rejected == 0 {
		return nil
	}
	return consumererror.NewPermanent(fmt.Errorf("%d item(s) refused permanently: %w", r.Rejected, r.Rejection))
}

// BodyExcerpt returns the response body excerpt (at most
// httpstatus.MaxBodyExcerpt bytes) carried by err, "" when it has none.
func BodyExcerpt(err error) string {
	var se *httpstatus.StatusError
	if errors.As(err, &se) {
		return se.Body
	}
	return ""
}

// StatusCode returns the HTTP status carried by err, 0 when it has none.
func StatusCode(err error) int {
	var se *httpstatus.StatusError
	if errors.As(err, &se) {
		return se.Code
	}
	return 0
}

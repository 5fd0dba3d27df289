// Package httpstatus maps an HTTP response to the collector's error classes, once
// for every anvilcol component that talks HTTP (the foundation and aitrace
// exporters, the alert processor's notifiers): 2xx is success; 408, 429 and
// every 5xx are retryable (a transient server error must not drop data),
// honouring Retry-After; 413 means "split and retry"; every other 4xx is
// permanent.
package httpstatus // import "github.com/anvil/anvilcol/internal/httpstatus"

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"

	"go.opentelemetry.io/collector/consumer/consumererror"
	"go.opentelemetry.io/collector/exporter/exporterhelper"
)

// MaxBodyExcerpt is how much of an error response body is kept in the error.
const MaxBodyExcerpt = 512

// ErrTooLarge is wrapped by the error for a 413 answer: the caller should split
// the request and send the halves.
var ErrTooLarge = errors.New("request entity too large")

// StatusError is an HTTP answer that is not 2xx.
type StatusError struct {
	Code       int
	Body       string        // first MaxBodyExcerpt bytes of the response body
	RetryAfter time.Duration // parsed Retry-After, 0 when absent
}

func (e *StatusError) Error() string {
	if e.Body == "" {
		return fmt.Sprintf("HTTP %d %s", e.Code, http.StatusText(e.Code))
	}
	return fmt.Sprintf("HTTP %d %s: %s", e.Code, http.StatusText(e.Code), e.Body)
}

// Unwrap lets errors.Is(err, ErrTooLarge) see a 413.
func (e *StatusError) Unwrap() error {
	if e.Code == http.StatusRequestEntityTooLarge {
		return ErrTooLarge
	}
	return nil
}

// Retryable reports whether a request that got this status can succeed later:
// 408, 429 and every 5xx. Retries stay bounded by the caller's
// retry_on_failure (or its notifier retry budget).
func Retryable(code int) bool {
	return code == http.StatusRequestTimeout || code == http.StatusTooManyRequests || code >= 500
}

// ParseRetryAfter reads a Retry-After header value (delay-seconds or HTTP-date);
// 0 when absent or unparsable.
func ParseRetryAfter(v string, now time.Time) time.Duration {
	if v == "" {
		return 0
	}
	if secs, err := strconv.Atoi(v); err == nil {
		if secs < 0 {
			return 0
		}
		return time.Duration(secs) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		if d := t.Sub(now); d > 0 {
			return d
		}
	}
	return 0
}

// FromResponse turns a response into nil (2xx) or a *StatusError carrying the
// start of the body. It drains and reads at most MaxBodyExcerpt bytes of the body;
// the caller still closes it.
func FromResponse(resp *http.Response) *StatusError {
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
		return nil
	}
	b, _ := io.ReadAll(io.LimitReader(resp.Body, MaxBodyExcerpt))
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
	return &StatusError{
		Code:       resp.StatusCode,
		Body:       string(b),
		RetryAfter: ParseRetryAfter(resp.Header.Get("Retry-After"), time.Now()),
	}
}

// ExporterError classifies a non-2xx answer for exporterhelper: retryable statuses
// become a throttle-retry error when Retry-After is set (plain error otherwise, so
// the exporter's backoff applies), others a permanent error. 413 is returned as
// permanent too; callers that split requests test errors.Is(err, ErrTooLarge)
// first.
func ExporterError(se *StatusError) error {
	if se == nil {
		return nil
	}
	if Retryable(se.Code) {
		if se.RetryAfter > 0 {
			return exporterhelper.NewThrottleRetry(se, se.RetryAfter)
		}
		return se
	}
	return consumererror.NewPermanent(se)
}

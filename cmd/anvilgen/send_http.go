package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"strconv"
	"time"
)

// httpPoster posts bodies and retries what a receiver says can succeed later:
// 429 and 503 after their Retry-After (default 1s), network errors after 1s,
// until -retry-for has passed.
type httpPoster struct {
	client   *http.Client
	token    string
	retryFor time.Duration
	sleep    func(ctx context.Context, d time.Duration) error
	now      func() time.Time
}

func newHTTPPoster(cfg *Config) *httpPoster {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = cfg.Workers
	tr.DisableCompression = true
	return &httpPoster{
		client:   &http.Client{Transport: tr, Timeout: cfg.Timeout},
		token:    cfg.Token,
		retryFor: cfg.RetryFor,
		sleep:    sleepCtx,
		now:      time.Now,
	}
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// errGaveUp: the batch was retried for -retry-for (or the run was cancelled).
var errGaveUp = errors.New("gave up retrying")

// post sends body and returns the final answer's status and body; it counts
// requests, bytes and retries.
func (p *httpPoster) post(ctx context.Context, url, contentType, encoding string, body []byte, c *counters) (int, []byte, error) {
	first := p.now()
	for attempt := 0; ; attempt++ {
		if attempt > 0 {
			c.retried.Add(1)
		}
		status, answer, wait, err := p.once(ctx, url, contentType, encoding, body)
		c.requests.Add(1)
		c.bytes.Add(int64(len(body)))
		if err == nil && status != http.StatusTooManyRequests && status != http.StatusServiceUnavailable {
			return status, answer, nil
		}
		if ctx.Err() != nil || p.now().Sub(first)+wait > p.retryFor {
			if err == nil {
				err = errGaveUp
			}
			return status, answer, err
		}
		if p.sleep(ctx, wait) != nil {
			return status, answer, errGaveUp
		}
	}
}

func (p *httpPoster) once(ctx context.Context, url, contentType, encoding string, body []byte) (status int, answer []byte, wait time.Duration, err error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return 0, nil, time.Second, err
	}
	req.Header.Set("Content-Type", contentType)
	if encoding != "" {
		req.Header.Set("Content-Encoding", encoding)
	}
	if p.token != "" {
		req.Header.Set("Authorization", "Bearer "+p.token)
	}
	resp, err := p.client.Do(req)
	if err != nil {
		return 0, nil, time.Second, err
	}
	defer resp.Body.Close()
	answer, err = io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return 0, nil, time.Second, err
	}
	return resp.StatusCode, answer, retryAfter(resp.Header.Get("Retry-After"), p.now()), nil
}

// retryAfter reads a Retry-After header (seconds or an HTTP date); 1s when
// absent or unreadable, at most 1 minute.
func retryAfter(h string, now time.Time) time.Duration {
	d := time.Second
	if h != "" {
		if s, err := strconv.Atoi(h); err == nil && s >= 0 {
			d = time.Duration(s) * time.Second
		} else if t, err := http.ParseTime(h); err == nil {
			d = max(t.Sub(now), 0)
		}
	}
	return min(d, time.Minute)
}

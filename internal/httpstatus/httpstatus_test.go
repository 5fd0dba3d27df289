package httpstatus

import (
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/collector/consumer/consumererror"
)

func resp(code int, body string, retryAfter string) *http.Response {
	h := http.Header{}
	if retryAfter != "" {
		h.Set("Retry-After", retryAfter)
	}
	return &http.Response{StatusCode: code, Header: h, Body: io.NopCloser(strings.NewReader(body))}
}

func TestStatusClasses(t *testing.T) {
	tests := []struct {
		code      int
		permanent bool
		tooLarge  bool
	}{
		{408, false, false}, {429, false, false}, {500, false, false}, {501, false, false},
		{502, false, false}, {503, false, false}, {504, false, false}, {599, false, false},
		{400, true, false}, {401, true, false}, {403, true, false}, {404, true, false}, {422, true, false},
		{413, true, true},
	}
	for _, tt := range tests {
		se := FromResponse(resp(tt.code, "nope", ""))
		if se == nil {
			t.Fatalf("%d: no error", tt.code)
		}
		err := ExporterError(se)
		if got := consumererror.IsPermanent(err); got != tt.permanent {
			t.Errorf("%d: permanent = %v, want %v", tt.code, got, tt.permanent)
		}
		if got := errors.Is(err, ErrTooLarge); got != tt.tooLarge {
			t.Errorf("%d: ErrTooLarge = %v, want %v", tt.code, got, tt.tooLarge)
		}
	}
	if se := FromResponse(resp(204, "", "")); se != nil {
		t.Errorf("204 gave %v", se)
	}
}

func TestBodyExcerptIsCapped(t *testing.T) {
	se := FromResponse(resp(400, strings.Repeat("x", 2000), ""))
	if len(se.Body) != MaxBodyExcerpt {
		t.Fatalf("body excerpt %d bytes, want %d", len(se.Body), MaxBodyExcerpt)
	}
}

func TestRetryAfter(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	if d := ParseRetryAfter("7", now); d != 7*time.Second {
		t.Errorf("seconds: %v", d)
	}
	if d := ParseRetryAfter(now.Add(30*time.Second).Format(http.TimeFormat), now); d != 30*time.Second {
		t.Errorf("date: %v", d)
	}
	for _, v := range []string{"", "soon", "-3"} {
		if d := ParseRetryAfter(v, now); d != 0 {
			t.Errorf("%q: %v", v, d)
		}
	}
	se := FromResponse(resp(429, "", "3"))
	if se.RetryAfter != 3*time.Second {
		t.Errorf("RetryAfter = %v", se.RetryAfter)
	}
}

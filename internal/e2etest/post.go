package e2etest

import (
	"bytes"
	"net/http"
	"testing"
)

// Post POSTs body to url as contentType and fails the test unless the
// request succeeds with a 2xx answer.
func Post(t testing.TB, url, contentType string, body []byte) {
	t.Helper()
	resp, err := http.Post(url, contentType, bytes.NewReader(body))
	if err != nil {
		t.Fatalf("POST %s: %v", url, err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		t.Fatalf("POST %s: HTTP %d", url, resp.StatusCode)
	}
}

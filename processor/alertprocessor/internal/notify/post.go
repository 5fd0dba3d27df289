package notify // import "github.com/anvil/anvilcol/processor/alertprocessor/internal/notify"

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"time"

	"go.opentelemetry.io/collector/component"

	"github.com/anvil/anvilcol/internal/httpstatus"
	"github.com/anvil/anvilcol/internal/jsonpost"
)

// builder is what a type's constructor uses: the collector's HTTP client
// settings, the clock and the shared pacing.
type builder struct {
	ctx    context.Context
	host   component.Host
	set    Settings
	pacers *pacers
}

// endpoint builds c's HTTP client for url (which replaces c's `endpoint`).
func (b *builder) endpoint(c *Config, url string) (endpoint, error) {
	hc := c.ClientConfig
	hc.Endpoint = url
	client, err := hc.ToClient(b.ctx, b.host.GetExtensions(), b.set.Telemetry)
	if err != nil {
		return endpoint{}, fmt.Errorf("HTTP client for %s: %w", url, err)
	}
	return endpoint{client: &jsonpost.Client{HTTP: client}, url: url}, nil
}

// endpoint is one URL the JSON payloads are POSTed to.
type endpoint struct {
	client *jsonpost.Client
	url    string
}

// post POSTs payload as JSON; a 2xx is nil, another status a
// *httpstatus.StatusError, an encoding or request error permanent.
func (e endpoint) post(ctx context.Context, payload any) error {
	b, err := json.Marshal(payload)
	if err != nil {
		return errors.Join(errPermanent, err)
	}
	o, err := e.client.Post(ctx, e.url, b, nil)
	if o == jsonpost.OutcomeRejected {
		return errors.Join(errPermanent, err)
	}
	return err
}

// errPermanent marks an error no retry can fix.
var errPermanent = errors.New("permanent")

// retryable: network errors and the statuses httpstatus.Retryable names
// (408, 429, every 5xx), as PagerDuty and Alertmanager clients retry.
func retryable(err error) bool {
	if errors.Is(err, errPermanent) || errors.Is(err, context.Canceled) {
		return false
	}
	var se *httpstatus.StatusError
	if errors.As(err, &se) {
		return httpstatus.Retryable(se.Code)
	}
	return true
}

// retryAfter is the Retry-After of a 429 or 503 answer, 0 without one.
func retryAfter(err error) time.Duration {
	var se *httpstatus.StatusError
	if errors.As(err, &se) {
		return se.RetryAfter
	}
	return 0
}

// jsonFloat encodes NaN and infinities (a window with no data) as null.
type jsonFloat float64

func (f jsonFloat) MarshalJSON() ([]byte, error) {
	v := float64(f)
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return []byte("null"), nil
	}
	return strconv.AppendFloat(nil, v, 'g', -1, 64), nil
}

// baselineValue is a baseline rule's Current or Baseline for a JSON
// payload; nil (left out) for other rules.
func baselineValue(n Notification, v float64) *jsonFloat {
	if n.Compare == "" {
		return nil
	}
	f := jsonFloat(v)
	return &f
}

func formatValue(v float64) string {
	return strconv.FormatFloat(v, 'g', -1, 64)
}

func rfc3339(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339Nano)
}

package httpexport

import (
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/collector/config/configcompression"
)

func TestDefaultsAreTheDocumentedOnes(t *testing.T) {
	c := NewDefaultConfig()
	if c.ClientConfig.Compression != configcompression.TypeGzip || c.ClientConfig.Timeout != 30*time.Second ||
		!c.QueueConfig.HasValue() || c.QueueConfig.Get().StorageID != nil || c.QueueConfig.Get().NumConsumers != 10 ||
		!c.RetryConfig.Enabled || c.RetryConfig.InitialInterval != 5*time.Second ||
		c.RetryConfig.MaxInterval != 30*time.Second || c.RetryConfig.MaxElapsedTime != 300*time.Second {
		t.Errorf("defaults = %+v, queue %+v", c, c.QueueConfig.Get())
	}
}

func TestCheckEndpointNamesTheBackend(t *testing.T) {
	for ep, want := range map[string]string{
		"":                            "`endpoint` is required: the base URL of Foundation, e.g. https://foundation.internal",
		"foundation.internal":         "`endpoint` \"foundation.internal\" must be an http:// or https:// URL",
		"ftp://foundation.internal":   "must be an http:// or https:// URL",
		"https://":                    "must be an http:// or https:// URL",
		"https://foundation.internal": "",
		"http://127.0.0.1:8080":       "",
	} {
		c := NewDefaultConfig()
		c.ClientConfig.Endpoint = ep
		err := c.CheckEndpoint("Foundation", "https://foundation.internal")
		if (want == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), want)) {
			t.Errorf("%q: err = %v, want %q", ep, err, want)
		}
	}
}

package nodeidentityprocessor // import "github.com/anvil/anvilcol/processor/nodeidentityprocessor"

import (
	"errors"
	"fmt"
	"strings"
	"unicode"
)

// Config of the `node_identity` processor. Every key is optional; the
// defaults give each resource host.name = the machine's host name,
// service.instance.id = host.name and service.name = anvil, where absent.
type Config struct {
	// NodeName is the host.name given to a resource that has none. Empty (the
	// default) means the machine's host name, read once when the processor is
	// created (as the system detector of the contrib resource detection
	// processor reads it with hostname_sources: [os]). The shipped agent sets
	// it from ANVILCOL_NODE_NAME.
	NodeName string `mapstructure:"node_name"`
	// ServiceName is the service.name given to a resource that has none
	// (default "anvil"). Empty leaves service.name alone.
	ServiceName string `mapstructure:"service_name"`
}

// Validate rejects names no backend could use as a label value: surrounding
// white space (a stray space or newline in an environment variable) and
// control characters.
func (cfg *Config) Validate() error {
	return errors.Join(checkName("node_name", cfg.NodeName), checkName("service_name", cfg.ServiceName))
}

func checkName(key, v string) error {
	if strings.TrimSpace(v) != v {
		return fmt.Errorf("%s %q has leading or trailing white space", key, v)
	}
	if i := strings.IndexFunc(v, unicode.IsControl); i >= 0 {
		return fmt.Errorf("%s %q has a control character at byte %d", key, v, i)
	}
	return nil
}

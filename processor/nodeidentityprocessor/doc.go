//go:generate go tool mdatagen metadata.yaml

// Package nodeidentityprocessor implements the `node_identity` processor: it
// gives every resource that reaches an agent the identity of the Anvil node
// that wrote it (host.name, service.instance.id, service.name), keeping any
// value the client sent (see README.md).
package nodeidentityprocessor // import "github.com/anvil/anvilcol/processor/nodeidentityprocessor"

// Package bench holds the whole-agent benchmark (`make bench-agent`): the
// shipped config/agent.yaml against a TLS + bearer-token OTLP/gRPC sink
// gateway on loopback, driven by bin/anvilgen per path (anvil, statsd, otlp),
// CPU and RSS of the agent process read from /proc. The benchmark is a test
// behind the `bench` build tag, so `make test` never runs it.
package bench

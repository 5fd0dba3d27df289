# anvilcol: build, run and test the distribution.
#   make run    build if needed, then run bin/anvilcol on config/local.yaml
#   make test   unit tests (-race, then the memory-bound tests without it), then end-to-end tests against bin/anvilcol and bin/anvilcol-agent
# See README.md, "Development".

SHELL          := /bin/bash
GO             ?= go
BUILDER_VERSION := v0.155.0
TOOLS          := $(CURDIR)/.tools
BUILDER        := $(TOOLS)/builder-$(BUILDER_VERSION)
BIN            := bin/anvilcol
AGENT_BIN      := bin/anvilcol-agent
GEN            := bin/anvilgen
CONFIG         ?= config/local.yaml
MODULE         := github.com/anvil/anvilcol
# Serialises concurrent builds of the one binary (several test runs at once).
LOCK           := $(shell command -v flock >/dev/null && echo "flock $(CURDIR)/bin/.build.lock")
GO_SOURCES     := $(shell find . -name '*.go' -not -path './.tools/*' -not -path './bin/*' -not -path './cmd/anvilgen/*' 2>/dev/null)

.PHONY: all build generate run test unit e2e lint tidy clean validate-configs deploy-check elixir bench-agent

all: build

# The pinned builder, installed into .tools/ (not on PATH, no global state).
$(BUILDER):
	@mkdir -p $(TOOLS)
	GOBIN=$(TOOLS) $(GO) install go.opentelemetry.io/collector/cmd/builder@$(BUILDER_VERSION)
	mv $(TOOLS)/builder $(BUILDER)

# Generate cmd/anvilcol/*.go and cmd/anvilcol-agent/*.go from the two
# manifests (the full distribution, and the agent one: builder-agent-config.yaml
# says why). --skip-get-modules: the builder's own `go mod tidy` fails at
# v0.155.0 on datadog-agent test-only modules the proxy refuses; the root
# go.mod/go.sum (see `make tidy`) pin the dependencies.
MANIFESTS := builder-config.yaml builder-agent-config.yaml
generate: $(BUILDER)
	$(BUILDER) --config builder-config.yaml --skip-get-modules --skip-compilation >/dev/null
	$(BUILDER) --config builder-agent-config.yaml --skip-get-modules --skip-compilation >/dev/null
	gofmt -w cmd/anvilcol cmd/anvilcol-agent

build: generate
	@$(MAKE) --no-print-directory $(BIN) $(AGENT_BIN) $(GEN)

$(BIN): $(GO_SOURCES) go.mod go.sum builder-config.yaml
	@mkdir -p bin
	$(LOCK) $(GO) build -mod=readonly -trimpath -ldflags="-s -w" -o $(BIN) ./cmd/anvilcol

$(AGENT_BIN): $(GO_SOURCES) go.mod go.sum builder-agent-config.yaml
	@mkdir -p bin
	$(LOCK) $(GO) build -mod=readonly -trimpath -ldflags="-s -w" -o $(AGENT_BIN) ./cmd/anvilcol-agent

# The load generator (cmd/anvilgen/README.md), under the same lock.
$(GEN): $(wildcard cmd/anvilgen/*.go) go.mod go.sum
	@mkdir -p bin
	$(LOCK) $(GO) build -mod=readonly -trimpath -ldflags="-s -w" -o $(GEN) ./cmd/anvilgen

run: build
	./$(BIN) --config $(CONFIG)

test: unit elixir deploy-check e2e

# The Prometheus rules of deploy/ (deploy/README.md): syntax, then their promtool
# unit tests. promtool comes with Debian's `prometheus` package (.ci/run).
deploy-check:
	promtool check config deploy/prometheus/prometheus.yml
	promtool check rules deploy/prometheus/anvil-rules.yaml
	cd deploy/prometheus && promtool test rules anvil-rules_test.yaml

# clients/elixir (the Anvil forwarder): ExUnit, offline, no dependencies, so
# Mix never needs Hex (stdin closed: nothing may prompt).
elixir:
	cd clients/elixir && mix test < /dev/null

# The memory-bound tests measure the Go heap, which -race inflates several
# times: they skip under -race and run in the second, non-race pass.
NORACE_TESTS = TestMemoryBounded|TestLargeValuesLiveOnDisk
NORACE_PKGS = ./processor/cardinalityguardprocessor/ ./extension/logstorage/
unit:
	$(GO) test -race -count=1 ./...
	$(GO) test -count=1 -run '$(NORACE_TESTS)' $(NORACE_PKGS)

# End-to-end tests run against bin/anvilcol inside a fresh network namespace
# that has only loopback (when unshare is permitted, as for root): whatever a
# stock component tries to reach (the datadog exporter's hostname chain probes
# cloud metadata addresses even with `hostname` set), nothing leaves the
# machine. The test binary is compiled first, outside, so no module download
# is ever needed inside (GOPROXY=off there).
e2e: build
	$(GO) test -count=1 -tags e2e -run '^$$' ./e2e/... >/dev/null
	ANVILCOL_BIN=$(CURDIR)/$(BIN) ANVILCOL_AGENT_BIN=$(CURDIR)/$(AGENT_BIN) GOPROXY=off scripts/netns-run $(GO) test -count=1 -tags e2e -timeout 30m ./e2e/...

# The whole-agent benchmark (internal/bench, README "Whole agent"): the shipped
# config/agent.yaml on bin/anvilcol-agent against a TLS + token sink gateway, driven by bin/anvilgen
# per path; prints CPU per 10k events/s, the anvil/statsd ratio, RSS, and the
# gateway-down check. Not part of `make test`. Loopback only (netns when
# permitted). Knobs: BENCH_RATE, BENCH_WARMUP, BENCH_WINDOW, BENCH_PATHS,
# BENCH_NODES, BENCH_OUTAGE (0 skips the gateway-down phase), BENCH_PPROF=dir,
# BENCH_EXTRA_CONFIG, BENCH_AGENT_ARGS (internal/bench/agent_test.go).
bench-agent: build
	$(GO) test -c -tags bench -o bin/bench-agent.test ./internal/bench/
	ANVILCOL_AGENT_BIN=$(CURDIR)/$(AGENT_BIN) ANVILGEN_BIN=$(CURDIR)/$(GEN) GOPROXY=off scripts/netns-run bin/bench-agent.test -test.run '^TestBenchAgent$$' -test.v -test.timeout 30m

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go') ); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(GO) vet -tags e2e ./e2e/...

# After changing a stock module in builder-config.yaml: fetch the manifest's
# modules at their pinned versions and tidy, tolerating the refused
# datadog-agent test-only modules (-e). Commit go.mod and go.sum.
tidy:
	GOFLAGS=-e $(GO) get $$(cat $(MANIFESTS) | grep -E '^\s*- gomod:' | grep -v '$(MODULE) ' | sed -E 's/.*gomod: *//; s/ +/@/' | sort -u) go.opentelemetry.io/collector/otelcol@$(BUILDER_VERSION)
	GOFLAGS=-e $(GO) mod tidy -e

clean:
	rm -rf bin .tools

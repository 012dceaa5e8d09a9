# The FaaS platform. `make help` lists the targets.
CARGO ?= cargo
export CARGO_TARGET_DIR ?= $(CURDIR)/target

.PHONY: help build run test test-deps samples down clean bench

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

build: ## Build the faas binary (release)
	$(CARGO) build --release

run: ## Run the platform on 127.0.0.1:8080 (embedded backend, data in ./data)
	$(CARGO) run --release -- serve

test-deps: ## Install and start what the tests need (toolchains, Docker engine, nats-server)
	./scripts/test-deps.sh

samples: ## Rebuild the sample functions (large components are cached)
	./samples/build.sh

test: test-deps ## Run every test against real Wasmtime, Docker and the real HTTP server
	./samples/build.sh large
	$(CARGO) test --workspace --no-fail-fast -- --test-threads=2

bench: ## Run the benchmarks (print numbers and ratios)
	$(CARGO) bench --workspace

down: ## Stop a platform started with `make run` and containers it left behind
	-pkill -INT -f 'faas serve' || true
	-docker ps -aq --filter label=faas.managed-by=faas | xargs -r docker rm -f

clean: down ## Remove build outputs and local data
	$(CARGO) clean
	rm -rf data samples/build samples/target

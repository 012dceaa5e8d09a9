# The FaaS platform. `make help` lists the targets.
CARGO ?= cargo
export CARGO_TARGET_DIR ?= $(CURDIR)/target

# With a Docker engine and a compose CLI (`docker compose` v2, else `docker-compose`),
# build/run/down drive docker-compose.yml; without one they build and run the binary.
COMPOSE ?= $(shell docker compose version >/dev/null 2>&1 && echo "docker compose" || \
	(command -v docker-compose >/dev/null 2>&1 && echo docker-compose))
# build/run use compose when a compose CLI, an engine and a .env file are all there;
# `make run COMPOSE=` forces the binary.
HAVE_ENGINE := $(shell docker info >/dev/null 2>&1 && echo yes)
USE_COMPOSE := $(if $(and $(COMPOSE),$(HAVE_ENGINE),$(wildcard .env)),yes)
# Compose needs JWT_SECRET and FAAS_SECRETS_KEY: from .env, else (config check only) .env.example.
ENV_FILE ?= $(if $(wildcard .env),.env,.env.example)

.PHONY: help build run test test-deps samples down clean bench compose-config images schemathesis

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-15s %s\n", $$1, $$2}'

build: ## Build the faas binary (release) and, with compose and .env, the compose images
	$(CARGO) build --release
ifeq ($(USE_COMPOSE),yes)
	$(COMPOSE) --env-file $(ENV_FILE) build
endif

run: ## Compose stack (gateway :9080) when .env exists, else `cargo run --release -- serve` (:8080)
ifeq ($(USE_COMPOSE),yes)
	DOCKER_GID=$$(stat -c %g /var/run/docker.sock) $(COMPOSE) up -d
	$(COMPOSE) ps
else
	$(CARGO) run --release -- serve
endif

compose-config: ## Validate docker-compose.yml (with .env, else .env.example)
	@test -n "$(COMPOSE)" || { echo "no compose CLI: apt-get install docker-compose"; exit 1; }
	$(COMPOSE) --env-file $(ENV_FILE) config -q && echo "docker-compose.yml: valid"

images: ## Build faas-local and nats-local images FROM scratch (no registry needed)
	$(CARGO) build --bin faas
	./deployments/local-images.sh

test-deps: ## Install and start what the tests need (toolchains, Docker engine, nats-server)
	./scripts/test-deps.sh

samples: ## Rebuild the sample functions (large components are cached)
	./samples/build.sh

test: test-deps ## Run every test against real Wasmtime, Docker and the real HTTP server
	./samples/build.sh large
	$(CARGO) test --workspace --no-fail-fast -- --test-threads=2

schemathesis: ## Only the schema fuzzer (also part of `make test`: tests/schema_fuzz.rs)
	$(CARGO) build --bin faas
	./scripts/schemathesis.sh $(CARGO_TARGET_DIR)/debug/faas

bench: ## Run the benchmarks (print numbers and ratios)
	$(CARGO) bench --workspace

down: ## Stop the compose stack or a `faas serve` started by `make run`, and leftover containers
ifneq ($(COMPOSE),)
	-$(COMPOSE) --env-file $(ENV_FILE) down --remove-orphans
	-docker ps -aq --filter label=faas.scaled-by=autoscaler | xargs -r docker rm -f
endif
	-pkill -INT -f 'faas serve' || true
	-docker ps -aq --filter label=faas.managed-by=faas 2>/dev/null | xargs -r docker rm -f

clean: down ## Remove build outputs, local data, compose volumes and the local images
ifneq ($(COMPOSE),)
	-$(COMPOSE) --env-file $(ENV_FILE) down --volumes --rmi local
endif
	-docker images -q 'faas-local' 2>/dev/null | sort -u | xargs -r docker rmi -f
	-docker images -q 'nats-local' 2>/dev/null | sort -u | xargs -r docker rmi -f
	$(CARGO) clean
	rm -rf data samples/build samples/target

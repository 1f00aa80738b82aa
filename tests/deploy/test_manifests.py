"""The Kubernetes manifests render (kustomize) and validate (kubeconform) against the
Kubernetes schemas and the Strimzi and CloudNativePG CRD schemas, offline, from what
``make manifests-tools`` brought into .cache; a broken fixture is caught; and the rendered
production overlay keeps the rules the deployment promises (probes, non-root, secrets only
referenced, each service's Kafka ACLs equal to what its code consumes)."""

from __future__ import annotations

import importlib
import inspect
from functools import cache
from pathlib import Path
from typing import Any, cast

import pytest
import yaml

from ila.manifests import (
    KUBECONFORM,
    KUSTOMIZE,
    SCHEMAS,
    kubeconform_problems,
    render,
)
from shared.bus import topic_for
from shared.inbox import EventConsumer
from shared.settings import SERVICES
from tests.support import IN_CI

REPO = Path(__file__).resolve().parents[2]
OVERLAYS = REPO / "deploy" / "k8s" / "overlays"
FIXTURES = Path(__file__).parent / "fixtures"
SECRETISH = ("PASSWORD", "SECRET", "PEPPER", "SEED", "KEY", "TOKEN")


@pytest.fixture(scope="module", autouse=True)
def tools() -> None:
    missing = [
        str(p)
        for p in (KUSTOMIZE, KUBECONFORM, SCHEMAS / "kubernetes", SCHEMAS / "crds")
        if not (REPO / p).exists()
    ]
    if missing:
        message = f"run `make manifests-tools` first; missing: {', '.join(missing)}"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)


@pytest.fixture(autouse=True)
def _in_repo(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(REPO)


@cache
def rendered(overlay: str) -> list[dict[str, Any]]:
    text = render(OVERLAYS / overlay)
    return [d for d in yaml.safe_load_all(text) if d]


def of_kind(overlay: str, kind: str) -> dict[str, dict[str, Any]]:
    return {d["metadata"]["name"]: d for d in rendered(overlay) if d["kind"] == kind}


@pytest.mark.parametrize("overlay", ["dev", "prod"])
def test_overlay_validates_against_kubernetes_and_operator_schemas(overlay: str) -> None:
    manifests = render(OVERLAYS / overlay)
    assert kubeconform_problems(manifests) == []
    kinds = {d["kind"] for d in rendered(overlay)}
    # the operators' resources were validated too, not skipped
    assert {"Kafka", "KafkaNodePool", "KafkaTopic", "KafkaUser"} <= kinds
    assert {"Cluster", "ScheduledBackup", "ObjectStore"} <= kinds


def test_a_broken_manifest_is_caught_with_each_mistake_named() -> None:
    problems = kubeconform_problems(render(FIXTURES / "broken"))
    assert len(problems) == 3, problems
    by_name = " ".join(problems)
    assert "Deployment ila-ledger" in by_name and "readinesProbe" in by_name
    assert "KafkaTopic ila-ledger" in by_name and "/spec/partitions" in by_name
    assert "Cluster ila-payments-db" in by_name and "replicas" in by_name


def test_a_kind_without_a_schema_is_an_error() -> None:
    problems = kubeconform_problems(render(FIXTURES / "unknown-kind"))
    assert len(problems) == 1 and "KafkaTopc" in problems[0], problems


@pytest.mark.parametrize("overlay", ["dev", "prod"])
def test_every_service_runs_non_root_with_probes_resources_and_referenced_secrets(
    overlay: str,
) -> None:
    deployments = of_kind(overlay, "Deployment")
    jobs = of_kind(overlay, "Job")
    assert set(deployments) == {f"ila-{s}" for s in SERVICES}
    assert set(jobs) == {f"ila-{s}-migrate" for s in SERVICES}
    assert not of_kind(overlay, "Secret"), "secrets are referenced, never inlined"
    for name, workload in {**deployments, **jobs}.items():
        pod = workload["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True, name
        assert pod["automountServiceAccountToken"] is False, name
        assert pod["serviceAccountName"] == "ila-" + name.split("-")[1], name
        (container,) = pod["containers"]
        assert container["securityContext"]["allowPrivilegeEscalation"] is False, name
        assert container["securityContext"]["readOnlyRootFilesystem"] is True, name
        assert container["resources"]["requests"] and container["resources"]["limits"], name
        for env in container.get("env", []):
            if any(word in env["name"] for word in SECRETISH) and "value" in env:
                assert "$(" in env["value"], f"{name}: {env['name']} inlined"
        if workload["kind"] == "Deployment":
            assert container["livenessProbe"]["httpGet"]["path"] == "/healthz", name
            assert container["startupProbe"]["httpGet"]["path"] == "/healthz", name
            assert container["readinessProbe"]["httpGet"]["path"] == "/readyz", name
    for kind in ("PodDisruptionBudget", "HorizontalPodAutoscaler", "NetworkPolicy"):
        assert {f"ila-{s}" for s in SERVICES} <= set(of_kind(overlay, kind)), kind


def test_each_service_reaches_only_its_own_database_and_kafka() -> None:
    policies = of_kind("prod", "NetworkPolicy")
    for service in SERVICES:
        egress = policies[f"ila-{service}"]["spec"]["egress"]
        selectors = [
            peer.get("podSelector", {}).get("matchLabels", {})
            for rule in egress
            for peer in rule["to"]
        ]
        databases = {s["cnpg.io/cluster"] for s in selectors if "cnpg.io/cluster" in s}
        assert databases == {f"ila-{service}-db"}
        assert any(s.get("strimzi.io/cluster") == "ila" for s in selectors)
        # one rule per destination: the database, Kafka, DNS; nothing else
        assert len(egress) == 3


def consumed_topics(service: str) -> set[str]:
    """The topics a service's code subscribes to (its consumers registered for real)."""
    consumer = EventConsumer(service, cast(Any, None), cast(Any, None))
    try:
        module = importlib.import_module(f"services.{service}.consumers")
    except ModuleNotFoundError:
        return set()
    # register(consumer, <the service's use cases>), or register(consumer) alone
    extra = len(inspect.signature(module.register).parameters) - 1
    module.register(consumer, *[cast(Any, None)] * extra)
    return set(consumer.topics)


@pytest.mark.parametrize("service", SERVICES)
def test_kafka_acls_follow_what_the_code_publishes_and_consumes(service: str) -> None:
    user = of_kind("prod", "KafkaUser")[f"ila-{service}"]
    acls = user["spec"]["authorization"]["acls"]
    topic_ops: dict[str, set[str]] = {}
    groups: dict[str, set[str]] = {}
    for acl in acls:
        resource = acl["resource"]
        if resource["type"] == "topic" and resource.get("patternType") == "literal":
            topic_ops.setdefault(resource["name"], set()).update(acl["operations"])
        if resource["type"] == "group":
            groups.setdefault(resource["name"], set()).update(acl["operations"])
    own = topic_for(service)
    reads = consumed_topics(service)
    writes = {own, f"{own}.dlt"}
    assert {t for t, ops in topic_ops.items() if "Write" in ops} == writes
    assert {t for t, ops in topic_ops.items() if "Read" in ops} == reads
    assert set(groups) == ({service} if reads else set())
    # nobody else may write this service's topic
    for other, theirs in of_kind("prod", "KafkaUser").items():
        if other != f"ila-{service}":
            for acl in theirs["spec"]["authorization"]["acls"]:
                if acl["resource"].get("name") in writes:
                    assert "Write" not in acl["operations"], other


def test_topics_keep_the_ledger_forever_with_three_copies() -> None:
    from ila.registry import definition

    topics = {t["spec"]["topicName"]: t["spec"] for t in of_kind("prod", "KafkaTopic").values()}
    assert set(topics) == {topic_for(s) for s in SERVICES} | {
        f"{topic_for(s)}.dlt" for s in SERVICES
    }
    ledger = topics[topic_for("ledger")]
    for key, value in definition("ledger").topic_config.items():
        assert str(ledger["config"][key]) == value
    assert ledger["config"]["retention.ms"] == -1
    for spec in topics.values():
        assert spec["replicas"] == 3 and spec["config"]["min.insync.replicas"] == 2
    config = of_kind("prod", "ConfigMap")["ila-config"]["data"]
    for name in SERVICES:
        assert topics[topic_for(name)]["partitions"] == int(config["ILA_KAFKA_PARTITIONS"])


def test_every_database_is_backed_up() -> None:
    clusters = of_kind("prod", "Cluster")
    scheduled = {b["spec"]["cluster"]["name"] for b in of_kind("prod", "ScheduledBackup").values()}
    stores = set(of_kind("prod", "ObjectStore"))
    assert set(clusters) == {f"ila-{s}-db" for s in SERVICES} == scheduled
    for name, cluster in clusters.items():
        (plugin,) = cluster["spec"]["plugins"]
        assert plugin["isWALArchiver"] is True
        assert plugin["parameters"]["barmanObjectName"] in stores, name
        assert cluster["spec"]["instances"] == 3, name

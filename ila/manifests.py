"""Schemas and checks for the deployment files: the Kubernetes manifests (deploy/k8s, rendered
by kustomize and validated by kubeconform against the Kubernetes schemas and the operators'
CRD schemas) and the compose file (deploy/compose.yaml, against the compose specification).

Everything is read from files the Makefile brought into ``.cache`` from the package registries
(``make manifests-tools``); nothing here reaches the network:

- the Kubernetes JSON schemas ship inside the ``kubernetes-validate`` wheel (PyPI); its
  schemas point into one shared definitions file, so each is bundled here into a standalone
  file with only the definitions it uses (kubeconform's layout, ``vX.Y.Z-standalone-strict``);
- the CustomResourceDefinitions come from the operators' own sources: Strimzi's, generated
  from its API jar by its CRD generator (Maven Central), CloudNativePG's and the Barman Cloud
  plugin's, from their Go modules; :func:`crd_schemas` turns each served version into a
  strict JSON schema (unknown fields refused unless the CRD preserves them);
- the compose specification's schema ships in the ``compose-go`` Go module.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import zipfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import yaml

KUBERNETES_VERSION = "1.33.0"
CACHE = Path(".cache")
KUSTOMIZE = CACHE / "bin" / "kustomize"
KUBECONFORM = CACHE / "bin" / "kubeconform"
SCHEMAS = CACHE / "schemas"
COMPOSE_SCHEMA = SCHEMAS / "compose-spec.json"
_REF = "/api/_definitions.json#/$defs/"

Json = dict[str, Any]


# -- the Kubernetes schemas ------------------------------------------------------------------


def kubernetes_schemas(wheel: Path, out: Path, version: str = KUBERNETES_VERSION) -> int:
    """Bundle ``kubernetes-validate``'s strict schemas of ``version`` into ``out``; returns
    how many files were written."""
    folder = f"kubernetes_validate/kubernetes-json-schema/v{version}-local-strict/"
    with zipfile.ZipFile(wheel) as z:
        names = [n for n in z.namelist() if n.startswith(folder) and n.endswith(".json")]
        if not names:
            raise SystemExit(f"{wheel} has no schemas for Kubernetes {version}")
        definitions: Json = json.loads(z.read(folder + "_definitions.json"))["$defs"]
        target = out / f"v{version}-standalone-strict"
        target.mkdir(parents=True, exist_ok=True)
        written = 0
        for name in names:
            base = name.rsplit("/", 1)[1]
            if base.startswith("_") or base == "all.json":
                continue
            schema = _local_refs(json.loads(z.read(name)))
            used: dict[str, Json] = {}
            _collect(schema, definitions, used)
            schema["$defs"] = dict(sorted(used.items()))
            (target / base).write_text(json.dumps(schema, separators=(",", ":")))
            written += 1
    return written


def _local_refs(node: Any) -> Any:
    if isinstance(node, dict):
        return {
            k: v.replace(_REF, "#/$defs/") if k == "$ref" and isinstance(v, str) else _local_refs(v)
            for k, v in node.items()
        }
    if isinstance(node, list):
        return [_local_refs(v) for v in node]
    return node


def _collect(node: Any, definitions: Json, used: dict[str, Json]) -> None:
    """Copy into ``used`` every definition ``node`` refers to, transitively."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str) and "#/$defs/" in value:
                name = value.split("#/$defs/", 1)[1]
                if name not in used:
                    used[name] = _local_refs(definitions[name])
                    _collect(used[name], definitions, used)
            else:
                _collect(value, definitions, used)
    elif isinstance(node, list):
        for value in node:
            _collect(value, definitions, used)


# -- the operators' CRDs ---------------------------------------------------------------------


def crd_schemas(crd_files: Iterable[Path], out: Path) -> list[Path]:
    """One strict JSON schema per kind and served version, at
    ``out/<group>/<kind>_<version>.json`` (kubeconform's template
    ``{{ .Group }}/{{ .ResourceKind }}_{{ .ResourceAPIVersion }}.json``)."""
    written = []
    for path in crd_files:
        for crd in _documents(path.read_text()):
            if crd.get("kind") != "CustomResourceDefinition":
                continue
            spec = crd["spec"]
            group, kind = spec["group"], spec["names"]["kind"]
            for version in spec["versions"]:
                if not version.get("served", True):
                    continue
                schema = _strict(version["schema"]["openAPIV3Schema"])
                props = schema.setdefault("properties", {})
                props["apiVersion"] = {"type": "string", "enum": [f"{group}/{version['name']}"]}
                props["kind"] = {"type": "string", "enum": [kind]}
                target = out / group / f"{kind.lower()}_{version['name']}.json"
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_text(json.dumps(schema, separators=(",", ":")))
                written.append(target)
    return written


def _strict(node: Any) -> Any:
    """OpenAPI v3 (as CRDs use it) to JSON schema, refusing unknown fields."""
    if isinstance(node, list):
        return [_strict(v) for v in node]
    if not isinstance(node, dict):
        return node
    result = {k: _strict(v) for k, v in node.items()}
    if result.pop("x-kubernetes-int-or-string", False):
        result.pop("type", None)
        result["anyOf"] = [{"type": "integer"}, {"type": "string"}]
    if result.pop("nullable", False) and isinstance(result.get("type"), str):
        result["type"] = [result["type"], "null"]
    preserve = result.pop("x-kubernetes-preserve-unknown-fields", False)
    if "properties" in result and not preserve and "additionalProperties" not in result:
        result["additionalProperties"] = False
    return result


def _documents(text: str) -> Iterator[Json]:
    for doc in yaml.safe_load_all(text):
        if isinstance(doc, dict):
            yield doc


# -- checks ----------------------------------------------------------------------------------


def render(overlay: Path, kustomize: Path = KUSTOMIZE) -> str:
    """``kustomize build`` of one overlay (raises with kustomize's message on failure)."""
    done = subprocess.run(
        [str(kustomize), "build", str(overlay)], capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise ValueError(f"kustomize build {overlay}: {done.stderr.strip()}")
    return done.stdout


def kubeconform_problems(
    manifests: str,
    *,
    schemas: Path = SCHEMAS,
    kubeconform: Path = KUBECONFORM,
    version: str = KUBERNETES_VERSION,
) -> list[str]:
    """Every resource in ``manifests`` that is invalid, or whose schema is missing (a kind
    nobody knows is an error, never skipped). Empty: all valid."""
    root = schemas.resolve()
    done = subprocess.run(
        [
            str(kubeconform),
            "-strict",
            "-summary",
            "-output",
            "json",
            "-kubernetes-version",
            version,
            "-schema-location",
            f"{root}/kubernetes/{{{{ .NormalizedKubernetesVersion }}}}-standalone"
            "{{ .StrictSuffix }}/{{ .ResourceKind }}{{ .KindSuffix }}.json",
            "-schema-location",
            f"{root}/crds/{{{{ .Group }}}}/"
            "{{ .ResourceKind }}_{{ .ResourceAPIVersion }}.json",
            "-",
        ],
        input=manifests,
        capture_output=True,
        text=True,
        check=False,
    )
    try:
        report = json.loads(done.stdout)
    except json.JSONDecodeError:
        return [f"kubeconform failed: {done.stdout.strip()} {done.stderr.strip()}"]
    problems = [
        f"{r.get('kind')} {r.get('name')}: {r.get('status')} {r.get('msg', '')}".strip()
        for r in report.get("resources", [])
        if r.get("status") != "statusValid"
    ]
    if done.returncode != 0 and not problems:
        problems.append(f"kubeconform exited {done.returncode}: {done.stderr.strip()}")
    if report.get("summary", {}).get("valid", 0) == 0 and not problems:
        problems.append("no resource validated")
    return problems


def compose_problems(compose: Path, schema: Path = COMPOSE_SCHEMA) -> list[str]:
    """Where ``compose`` breaks the compose specification (empty: it conforms)."""
    import jsonschema

    spec = json.loads(schema.read_text())
    document = yaml.safe_load(compose.read_text())
    cls = jsonschema.validators.validator_for(spec)  # the draft the schema declares (2020-12)
    cls.check_schema(spec)
    validator = cls(spec)
    return [
        f"{'/'.join(str(p) for p in error.absolute_path) or '<root>'}: {error.message}"
        for error in sorted(validator.iter_errors(document), key=lambda e: list(e.path))
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ila.manifests")
    sub = parser.add_subparsers(dest="command", required=True)
    k8s = sub.add_parser("kubernetes-schemas", help="bundle the Kubernetes schemas")
    k8s.add_argument("wheel", type=Path)
    crds = sub.add_parser("crd-schemas", help="JSON schemas from CRD yaml files")
    crds.add_argument("crds", type=Path, nargs="+")
    check = sub.add_parser("check", help="render and validate overlays and the compose file")
    check.add_argument("overlays", type=Path, nargs="+")
    check.add_argument("--compose", type=Path)
    args = parser.parse_args(argv)

    if args.command == "kubernetes-schemas":
        count = kubernetes_schemas(args.wheel, SCHEMAS / "kubernetes")
        print(f"{count} Kubernetes {KUBERNETES_VERSION} schemas")
        return 0
    if args.command == "crd-schemas":
        written = crd_schemas(args.crds, SCHEMAS / "crds")
        print(f"{len(written)} CRD schemas")
        return 0
    failed = False
    for overlay in args.overlays:
        problems = kubeconform_problems(render(overlay))
        for problem in problems:
            print(f"{overlay}: {problem}", file=sys.stderr)
        print(f"{overlay}: {'INVALID' if problems else 'valid'}")
        failed |= bool(problems)
    if args.compose:
        problems = compose_problems(args.compose)
        for problem in problems:
            print(f"{args.compose}: {problem}", file=sys.stderr)
        print(f"{args.compose}: {'INVALID' if problems else 'valid'}")
        failed |= bool(problems)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())

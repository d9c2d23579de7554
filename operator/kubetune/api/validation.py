"""Check a manifest the way the API server will: the CRD schema, its CEL rules, then the models.

`kubetune run` and `kubetune validate` use this so that a bad manifest gets the same
message on a laptop as from `kubectl apply`; the tests use it to prove that the
generated CRDs refuse what they must.
"""
from __future__ import annotations

import functools
import json
import re
import threading
from dataclasses import dataclass
from typing import Any

import celpy
import jsonschema
import pydantic

from . import RESOURCES
from .common import API_VERSION, Model
from .crdgen import openapi_schema


@dataclass(frozen=True)
class Problem:
    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}" if self.path else self.message


class InvalidManifest(ValueError):
    def __init__(self, what: str, problems: list[Problem]):
        self.what, self.problems = what, problems
        lines = "\n".join(f"  - {p}" for p in problems)
        super().__init__(f"{what} is invalid:\n{lines}")


def describe(manifest: Any) -> str:
    """How messages name an object: "Study 'digits'", or what is known of it."""
    meta = manifest.get("metadata") if isinstance(manifest, dict) else None
    name = meta.get("name") if isinstance(meta, dict) else None
    kind = manifest.get("kind") if isinstance(manifest, dict) else None
    if kind and name:
        return f"{kind} {str(name)!r}"
    if kind:
        return f"{kind} without a name"
    return f"object {str(name)!r}" if name else "a document that is not a Kubernetes object"


_MODELS: dict[str, type[Model]] = {m.KIND: m for m in RESOURCES}  # type: ignore[attr-defined]


def foreign(manifest: Any) -> bool:
    """Another API's object (a ConfigMap, a Kustomization in the same GitOps folder): not
    ours to judge. Our kinds under a wrong apiVersion, and documents that are no
    Kubernetes object at all, are ours: they are mistakes to report."""
    if not isinstance(manifest, dict):
        return False
    api_version, kind = manifest.get("apiVersion"), manifest.get("kind")
    return (isinstance(api_version, str) and isinstance(kind, str) and kind not in _MODELS
            and api_version.split("/")[0] != API_VERSION.split("/")[0])


def _as_jsonschema(node: Any) -> Any:
    """The structural schema as draft-2020 JSON Schema with Kubernetes' semantics:
    unknown fields are errors (kubectl's strict field validation), preserved ones are not."""
    if isinstance(node, list):
        return [_as_jsonschema(x) for x in node]
    if not isinstance(node, dict):
        return node
    out = {k: _as_jsonschema(v) for k, v in node.items() if not k.startswith("x-kubernetes-") and k != "default"}
    if node.get("exclusiveMinimum") is True:
        out["exclusiveMinimum"] = out.pop("minimum")
    if node.get("exclusiveMaximum") is True:
        out["exclusiveMaximum"] = out.pop("maximum")
    if node.get("nullable"):
        out.pop("nullable")
        if "type" in out:
            out["type"] = [out["type"], "null"]
    if "properties" in node and "additionalProperties" not in node and not node.get("x-kubernetes-preserve-unknown-fields"):
        out["additionalProperties"] = False
    return out


@functools.cache
def _schemas(kind: str) -> tuple[dict[str, Any], jsonschema.protocols.Validator]:
    schema = openapi_schema(_MODELS[kind])
    validator_cls = jsonschema.validators.validator_for({"$schema": "https://json-schema.org/draft/2020-12/schema"})
    return schema, validator_cls(_as_jsonschema(schema))


def _path(parts: Any) -> str:
    out = ""
    for p in parts:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    return out


def _typed(schema: dict[str, Any], data: Any) -> Any:
    """Data with numbers typed as the schema says, as the API server hands them to CEL."""
    t = schema.get("type")
    if t == "number" and isinstance(data, (int, float)) and not isinstance(data, bool):
        return float(data)
    if isinstance(data, dict):
        props = schema.get("properties", {})
        extra = schema.get("additionalProperties")
        return {
            k: _typed(props.get(k, extra if isinstance(extra, dict) else {}), v) for k, v in data.items()
        }
    if isinstance(data, list):
        return [_typed(schema.get("items", {}), x) for x in data]
    return data


_CEL = threading.Lock()


@functools.cache
def _program(rule: str) -> Any:
    # The operator's handlers run in threads; celpy builds its lark grammar on first use, and
    # several threads doing that at once failed now and then at an operator's start (a
    # SystemError "AST constructor recursion depth mismatch" from CPython's ast.literal_eval).
    with _CEL:
        env = celpy.Environment()
        return env.program(env.compile(rule))


def extension_problems(schema: dict[str, Any], data: Any, path: str = "") -> list[Problem]:
    """What the API server checks beyond JSON Schema: CEL rules (x-kubernetes-validations)
    and unique keys of map-type lists."""
    problems: list[Problem] = []
    if isinstance(data, list) and schema.get("x-kubernetes-list-type") == "map":
        keys = schema.get("x-kubernetes-list-map-keys", [])
        seen: set[tuple[Any, ...]] = set()
        for i, item in enumerate(data):
            key = tuple(item.get(k) for k in keys) if isinstance(item, dict) else (item,)
            if key in seen:
                problems.append(Problem(f"{path}[{i}]", f"Duplicate value: {dict(zip(keys, key))}"))
            seen.add(key)
    if isinstance(data, list) and schema.get("x-kubernetes-list-type") == "set":
        values: list[Any] = []
        for i, item in enumerate(data):
            if any(item == v and type(item) is type(v) for v in values):
                problems.append(Problem(f"{path}[{i}]", f"Duplicate value: {json.dumps(item)}"))
            values.append(item)
    if isinstance(data, dict):
        for rule in schema.get("x-kubernetes-validations", []):
            if "oldSelf" in rule["rule"]:
                continue  # a transition rule: judges an update, and one manifest has no old object
            try:
                ok = bool(_program(rule["rule"]).evaluate({"self": celpy.json_to_cel(_typed(schema, data))}))
            except celpy.CELEvalError as e:  # a rule that cannot evaluate is a refusal on a real server too
                ok, rule = False, {**rule, "message": f"{rule['message']} (rule error: {e.args[0]})"}
            if not ok:
                problems.append(Problem(path + rule.get("fieldPath", ""), rule["message"]))
        props = schema.get("properties", {})
        extra = schema.get("additionalProperties")
        for key, value in data.items():
            sub = props.get(key) or (extra if isinstance(extra, dict) else None)
            if sub:
                problems += extension_problems(sub, value, f"{path}.{key}" if path else key)
    elif isinstance(data, list) and "items" in schema:
        for i, value in enumerate(data):
            problems += extension_problems(schema["items"], value, f"{path}[{i}]")
    return problems


def problems(manifest: Any) -> list[Problem]:
    """Everything wrong with a manifest, each with the path of the field at fault."""
    if not isinstance(manifest, dict):
        return [Problem("", "a manifest must be a mapping with apiVersion, kind, metadata and spec")]
    kind = manifest.get("kind")
    if manifest.get("apiVersion") != API_VERSION:
        return [Problem("apiVersion", f"expected {API_VERSION}, got {manifest.get('apiVersion')!r}")]
    if kind not in _MODELS:
        return [Problem("kind", f"expected one of {sorted(_MODELS)}, got {kind!r}")]
    if not (manifest.get("metadata") or {}).get("name"):
        return [Problem("metadata.name", "every object needs a name")]
    # the spec is the user's; a status is the operator's and never makes an object invalid
    manifest = {k: v for k, v in manifest.items() if k != "status"}
    # and what the API server writes in metadata (a finalizer, an owner, the generation) is
    # its own: left out, so a Round whose metadata the operator or kopf just patched is not
    # checked again (CEL rules in Python, ~8 ms a Round: 3% of the operator's CPU in a first wave)
    meta = {k: v for k, v in manifest["metadata"].items() if k not in _SERVER_SET}
    key = json.dumps({**manifest, "metadata": meta}, sort_keys=True, default=str)
    return list(_checked(key))


_SERVER_SET = frozenset({"resourceVersion", "managedFields", "uid", "generation", "creationTimestamp", "finalizers",
                         "ownerReferences", "deletionTimestamp", "deletionGracePeriodSeconds", "selfLink"})
"""Metadata the API server (or a controller) sets: no check reads it."""


@functools.lru_cache(maxsize=2048)
def _checked(key: str) -> tuple[Problem, ...]:
    """The checks proper, once per distinct manifest: the operator asks on every pass."""
    manifest = json.loads(key)
    return tuple(_find(manifest["kind"], manifest))


def _find(kind: str, manifest: dict[str, Any]) -> list[Problem]:
    schema, validator = _schemas(kind)
    found = [
        Problem(_path(e.absolute_path), e.message)
        for e in sorted(validator.iter_errors(manifest), key=lambda e: list(map(str, e.absolute_path)))
    ]
    if found:
        return found
    found = extension_problems(schema, manifest)
    if found:
        return found
    try:
        _MODELS[kind].model_validate(manifest)
    except pydantic.ValidationError as e:
        found = model_problems(e)
    return found


def model_problems(e: pydantic.ValidationError) -> list[Problem]:
    """A model's validation errors as Problems, each with the path of the field at fault."""
    found = []
    for err in e.errors():
        msg = err["msg"].removeprefix("Value error, ")
        path = _path(err["loc"])
        relative = re.match(r"^([A-Za-z_][\w.\[\]]*): (.*)$", msg, re.S)
        if relative:  # a validator named the field inside the object it checks
            path, msg = f"{path}.{relative.group(1)}" if path else relative.group(1), relative.group(2)
        found.append(Problem(path, msg))
    return found


def parse(manifest: dict[str, Any]) -> Model:
    """The typed object, or InvalidManifest listing every problem."""
    found = problems(manifest)
    if found:
        raise InvalidManifest(describe(manifest), found)
    return _MODELS[manifest["kind"]].model_validate(manifest)

"""The CRDs are generated from the models, structural, documented, and refuse bad input."""
import re
from pathlib import Path

import celpy
import pytest
import yaml

from kubetune.api.crdgen import crd_by_kind, render_all
from kubetune.api.validation import foreign, problems

ROOT = Path(__file__).resolve().parents[2]


def test_committed_crds_match_the_models():
    rendered = render_all()
    committed = {p.name: p.read_text() for p in (ROOT / "crds").glob("*.yaml")}
    assert committed == rendered, "crds/ is stale: run `kubetune crds -o crds`"


def _walk(schema, path="$"):
    yield path, schema
    for name, sub in schema.get("properties", {}).items():
        yield from _walk(sub, f"{path}.{name}")
    if isinstance(schema.get("items"), dict):
        yield from _walk(schema["items"], f"{path}[]")
    if isinstance(schema.get("additionalProperties"), dict):
        yield from _walk(schema["additionalProperties"], f"{path}{{}}")


@pytest.mark.parametrize("kind", ["Study", "Round", "Trial"])
def test_schema_is_structural_and_documented(kind):
    schema = crd_by_kind()[kind]["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    text = yaml.safe_dump(schema)
    for forbidden in ("$ref", "anyOf", "title:", "$defs", "const:"):
        assert forbidden not in text, forbidden
    for path, node in _walk(schema):
        preserved = node.get("x-kubernetes-preserve-unknown-fields")
        assert "type" in node or preserved, f"{path} has no type"
        if path.count(".") >= 1 and not path.endswith(("{}", "[]")) and path not in ("$.metadata",):
            assert node.get("description"), f"{path} has no description for kubectl explain"
        if "properties" in node:
            assert node.get("additionalProperties") in (None,), f"{path}: properties beside additionalProperties"


@pytest.mark.parametrize("kind", ["Study", "Round", "Trial"])
def test_crd_names_columns_and_status_subresource(kind):
    c = crd_by_kind()[kind]
    assert c["spec"]["names"]["categories"] == ["tuning"]
    assert c["spec"]["names"]["shortNames"]
    version = c["spec"]["versions"][0]
    assert version["subresources"] == {"status": {}}
    columns = {col["name"] for col in version["additionalPrinterColumns"]}
    assert "Age" in columns
    if kind != "Study":
        assert "Phase" in columns
    status = version["schema"]["openAPIV3Schema"]["properties"]["status"]["properties"]
    assert status["conditions"]["x-kubernetes-list-type"] == "map"
    assert "observedGeneration" in status


def test_every_cel_rule_compiles():
    env = celpy.Environment()
    rules = [
        rule["rule"]
        for c in crd_by_kind().values()
        for _, node in _walk(c["spec"]["versions"][0]["schema"]["openAPIV3Schema"])
        for rule in node.get("x-kubernetes-validations", [])
    ]
    assert len(rules) >= 10
    for rule in rules:
        env.compile(rule)


def test_crds_pass_kubernetes_schema_validation():
    kv = pytest.importorskip("kubernetes_validate")
    for doc in crd_by_kind().values():
        kv.validate(doc, "1.30", strict=True)


EXAMPLES = sorted((ROOT / "examples").rglob("*.yaml"))


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: str(p.relative_to(ROOT)))
def test_examples_are_valid(path):
    for doc in yaml.safe_load_all(path.read_text()):
        if foreign(doc):  # a Flux Kustomization, an Argo CD Application: not kubetune's to judge
            continue
        assert problems(doc) == []


INVALID = sorted((ROOT / "tests" / "invalid").glob("*.yaml"))


def test_the_invalid_corpus_is_large():
    assert len(INVALID) >= 30


@pytest.mark.parametrize("path", INVALID, ids=lambda p: p.stem)
def test_invalid_manifest_is_refused_naming_the_field(path):
    text = path.read_text()
    expected = re.search(r"# expect: (\S+)", text).group(1)
    found = problems(yaml.safe_load(text))
    assert found, "accepted a bad manifest"
    assert any(str(p).startswith(expected) for p in found), [str(p) for p in found]


def _cel_visible(node: dict) -> bool:
    """Whether a real API server gives CEL a type for this schema: it drops a field with no
    type (x-kubernetes-preserve-unknown-fields alone), and a list or map of such values."""
    if node.get("x-kubernetes-int-or-string"):
        return True
    if node.get("type") == "array":
        return _cel_visible(node.get("items") or {})
    if node.get("type") == "object" and isinstance(node.get("additionalProperties"), dict):
        return _cel_visible(node["additionalProperties"])
    return "type" in node


def test_cel_rules_read_only_fields_a_real_api_server_types():
    """Offline, the same refusal a real API server gives (`undefined field 'choices'`)."""
    for kind, c in crd_by_kind().items():
        for path, node in _walk(c["spec"]["versions"][0]["schema"]["openAPIV3Schema"]):
            hidden = {name for name, sub in node.get("properties", {}).items() if not _cel_visible(sub)}
            for rule in node.get("x-kubernetes-validations", []):
                used = set(re.findall(r"self\.(\w+)", rule["rule"]))
                assert not used & hidden, f"{kind} {path}: rule {rule['rule']!r} reads {used & hidden}, untyped"


def test_what_the_api_server_writes_in_metadata_does_not_check_a_round_again():
    """The operator asks on every pass whether a Round is valid; kopf's finalizer and the
    Study's owner reference change its metadata, not its spec, and must not cost another
    check (CEL rules evaluated in Python). The spec, the name and the labels still count."""
    from kubetune.api.validation import _checked

    rnd = yaml.safe_load((ROOT / "examples" / "quickstart" / "round.yaml").read_text())
    rnd["metadata"].update(namespace="ns", uid="u-1", generation=1, resourceVersion="7")
    assert problems(rnd) == []
    misses = _checked.cache_info().misses
    patched = {**rnd, "metadata": {**rnd["metadata"], "resourceVersion": "8", "generation": 2,
                                   "finalizers": ["kopf.zalando.org/KopfFinalizerMarker"],
                                   "ownerReferences": [{"apiVersion": "kubetune.io/v1alpha1", "kind": "Study",
                                                        "name": "s", "uid": "u-s"}]},
               "status": {"phase": "Running"}}
    assert problems(patched) == [] and _checked.cache_info().misses == misses
    broken = {**patched, "spec": {**patched["spec"], "budget": {**patched["spec"]["budget"], "parallelism": 0}}}
    assert problems(broken) and _checked.cache_info().misses == misses + 1

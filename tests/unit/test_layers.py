"""The pure core never imports kopf, the Kubernetes client or HTTP (layers: controller -> core -> api)."""
import ast
from pathlib import Path

PKG = Path(__file__).resolve().parents[2] / "operator" / "kubetune"
PURE = ["api", "core", "stopping", "analysis", "sampling.py", "space.py", "workload.py"]
FORBIDDEN = {"kopf", "kubernetes", "urllib", "http", "requests", "httpx", "aiohttp", "socket",
             "subprocess", "kubetune.controller", "kubetune.local", "kubetune.metrics.prometheus"}


def _imports(path: Path):
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            mod = node.module or ""
            if node.level:
                parts = path.relative_to(PKG.parent).with_suffix("").parts[: -node.level]
                mod = ".".join([*parts, mod]) if mod else ".".join(parts)
            yield mod


def test_pure_modules_import_no_io():
    files = []
    for p in PURE:
        target = PKG / p
        files += sorted(target.rglob("*.py")) if target.is_dir() else [target]
    offenders = []
    for f in files:
        for mod in _imports(f):
            if any(mod == x or mod.startswith(x + ".") for x in FORBIDDEN):
                offenders.append(f"{f.relative_to(PKG)} imports {mod}")
    assert not offenders, offenders


def test_the_sdk_needs_only_prometheus_client():
    allowed = {"prometheus_client", "atexit", "json", "math", "os", "signal", "sys", "threading", "traceback",
               "collections", "typing", "__future__"}
    mods = {m.split(".")[0] for m in _imports(PKG / "sdk.py")}
    assert mods <= allowed, mods - allowed

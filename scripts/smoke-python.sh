#!/usr/bin/env bash
# Smoke test of the Python wheel: a fresh virtual environment installs the wheel that
# `npx projen package:python` wrote to dist/python, with aws-cdk-lib, constructs and pytest, and
# runs test/python under pytest (synth of a stack that uses every construct + assertions).
#
#   npx projen package:python && scripts/smoke-python.sh
#
# pip's download cache (~/.cache/pip) is used; the venv itself is recreated on every run.
# When PyPI does not have the aws-cdk-lib version this library builds against (yet), its Python
# bindings are generated from node_modules/aws-cdk-lib with jsii-pacmak once and kept in
# .local/cdk-lib-wheels (slow the first time, reused afterwards).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

venv=.local/py-smoke-venv
wheelhouse=.local/cdk-lib-wheels
python=${PYTHON:-python3}

shopt -s nullglob
wheels=(dist/python/*.whl)
if [ ${#wheels[@]} -ne 1 ]; then
  echo "smoke-python: expected one wheel in dist/python, found ${#wheels[@]}: run 'npx projen package:python' first" >&2
  exit 1
fi
wheel=${wheels[0]}
# The wheel ships the handler bundles: without them every synth fails (Cannot find asset).
if ! "$python" -m zipfile -l "$wheel" >/dev/null 2>&1; then
  echo "smoke-python: $wheel is not a readable wheel" >&2
  exit 1
fi
"$python" - "$wheel" <<'EOF'
import io, sys, tarfile, zipfile
whl = zipfile.ZipFile(sys.argv[1])
tgz = [n for n in whl.namelist() if n.endswith('.jsii.tgz')]
assert len(tgz) == 1, f'no jsii tarball in {sys.argv[1]}'
names = tarfile.open(fileobj=io.BytesIO(whl.read(tgz[0]))).getnames()
bundles = [n for n in names if n.startswith('package/lambda-dist/') and n.endswith('/index.js')]
if not bundles:
    sys.exit(f'smoke-python: {sys.argv[1]} has no lambda-dist/<handler>/index.js: run node scripts/bundle.mjs before packaging')
print(f'smoke-python: wheel ships {len(bundles)} handler bundle(s): ' + ', '.join(b.split('/')[2] for b in bundles))
EOF

cdk_version=$(node -p "require('aws-cdk-lib/package.json').version")
constructs_version=$(node -p "require('constructs/package.json').version")

rm -rf "$venv"
"$python" -m venv "$venv"
pip=("$venv/bin/python" -m pip --disable-pip-version-check)

# aws-cdk-lib from PyPI when it has the version, else from the local wheelhouse (built once).
find_links=()
if ! "${pip[@]}" download -q --no-deps -d "$venv/probe" "aws-cdk-lib==$cdk_version" >/dev/null 2>&1; then
  if ! compgen -G "$wheelhouse/aws_cdk_lib-$cdk_version-*.whl" >/dev/null; then
    echo "smoke-python: PyPI has no aws-cdk-lib==$cdk_version; generating its bindings from node_modules (once)"
    build=.local/cdk-lib-build/python
    rm -rf "$build"
    npx jsii-pacmak --target python --outdir "$build" node_modules/aws-cdk-lib
    mkdir -p "$wheelhouse"
    cp "$build"/python/aws_cdk_lib-"$cdk_version"-*.whl "$wheelhouse"/
  fi
  find_links=(--find-links "$wheelhouse")
fi
rm -rf "$venv/probe"

# The wheel with its declared dependencies (the venv is new: always the wheel just built).
"${pip[@]}" install -q "${find_links[@]}" "$wheel" \
  "aws-cdk-lib==$cdk_version" "constructs==$constructs_version" -r test/python/requirements.txt
"${pip[@]}" check

cd test/python
PYTHONDONTWRITEBYTECODE=1 "$root/$venv/bin/python" -m pytest -p no:cacheprovider -q "$@"

#!/usr/bin/env bash
# Smoke test of the Python wheel: a fresh virtual environment installs the wheel that
# `npx projen package:python` wrote to dist/python, with aws-cdk-lib, constructs and pytest, and
# runs test/python under pytest (synth of a stack that uses every construct + assertions).
#
#   npx projen package:python && scripts/smoke-python.sh
#
# pip's download cache (~/.cache/pip) is used; the venv itself is recreated on every run.
# aws-cdk-lib comes from PyPI, or from .local/cdk-lib-wheels (see scripts/cdk-lib-bindings.sh).
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

# aws-cdk-lib from PyPI, or from the wheelhouse when PyPI does not have the version (yet).
scripts/cdk-lib-bindings.sh python
find_links=()
if [ -d "$wheelhouse" ]; then find_links=(--find-links "$wheelhouse"); fi

# The wheel with its declared dependencies (the venv is new: always the wheel just built).
# --no-compile: byte-compiling aws-cdk-lib's generated modules takes minutes, and the test runs
# with PYTHONDONTWRITEBYTECODE anyway.
"${pip[@]}" install -q --no-compile "${find_links[@]}" "$wheel" \
  "aws-cdk-lib==$cdk_version" "constructs==$constructs_version" -r test/python/requirements.txt
"${pip[@]}" check

cd test/python
PYTHONDONTWRITEBYTECODE=1 "$root/$venv/bin/python" -m pytest -p no:cacheprovider -q "$@"

# Every README example, as translated to Python for API.md and the docstrings, compiles, its
# imports resolve and every name it reads is defined (needs .jsii.tabl.json: `npx projen docgen` first).
cd "$root"
node scripts/translations.mjs write python .local/readme-python
PYTHONDONTWRITEBYTECODE=1 "$root/$venv/bin/python" scripts/check_translations.py .local/readme-python

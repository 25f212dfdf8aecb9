#!/usr/bin/env bash
# Runs this example project as a user would: installs the packed cdk-lambda-microvms tarball
# (argument 1, e.g. dist/js/cdk-lambda-microvms@0.0.0.jsii.tgz) and runs its Jest test.
set -euo pipefail
tarball=$(realpath "$1")
cd "$(dirname "$0")"
rm -rf node_modules package-lock.json
npm install --no-audit --no-fund --no-save "$tarball"
npm test

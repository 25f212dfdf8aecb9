#!/usr/bin/env bash
# `npx projen package:java`: jsii-pacmak's Java target, built against Maven's own local repository
# (the cache, and where scripts/cdk-lib-bindings.sh installs aws-cdk-lib when Maven Central lags)
# instead of the empty throwaway repository pacmak uses by default.
set -euo pipefail
cd "$(dirname "$0")/.."
exec npx jsii-pacmak -v --target java --maven-local-repository "${MAVEN_LOCAL_REPOSITORY:-$HOME/.m2/repository}"

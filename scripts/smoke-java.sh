#!/usr/bin/env bash
# Smoke test of the Java jar: the Maven project in test/java depends on the jar that
# `npx projen package:java` wrote to dist/java (a Maven repository layout), synthesizes a stack
# that uses every construct and asserts it with aws-cdk-lib's assertions, under JUnit.
#
#   scripts/cdk-lib-bindings.sh java && npx projen package:java && scripts/smoke-java.sh
#
# Maven's default local repository (~/.m2) is the cache; set MAVEN_LOCAL_REPOSITORY to use
# another one. Extra arguments go to Maven (e.g. -Dtest=SmokeTest#imageGrantRun). Then every README
# example, as translated to Java, is compiled (needs .jsii.tabl.json: `npx projen docgen` first).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

group_path=io/github/cdklambdamicrovms/cdk-lambda-microvms
version=$(node -p "require('./package.json').version")
jar="dist/java/$group_path/$version/cdk-lambda-microvms-$version.jar"
if [ ! -f "$jar" ]; then
  echo "smoke-java: $jar not found: run 'npx projen package:java' first" >&2
  exit 1
fi
# The jar ships the handler bundles: without them every synth fails (Cannot find asset).
tgz=$(unzip -Z1 "$jar" | grep '\.jsii\.tgz$' || true)
if [ -z "$tgz" ]; then
  echo "smoke-java: $jar has no jsii tarball" >&2
  exit 1
fi
bundles=$(unzip -p "$jar" "$tgz" | tar tzf - | grep -E '^package/lambda-dist/[^/]+/index\.js$' || true)
if [ -z "$bundles" ]; then
  echo "smoke-java: $jar has no lambda-dist/<handler>/index.js: run node scripts/bundle.mjs before packaging" >&2
  exit 1
fi
echo "smoke-java: jar ships $(echo "$bundles" | wc -l) handler bundle(s): $(echo "$bundles" | cut -d/ -f3 | tr '\n' ' ')"

repo_args=()
if [ -n "${MAVEN_LOCAL_REPOSITORY:-}" ]; then repo_args=("-Dmaven.repo.local=$MAVEN_LOCAL_REPOSITORY"); fi
local_repo=${MAVEN_LOCAL_REPOSITORY:-$HOME/.m2/repository}
# Every build has the same version number: drop the copy Maven cached from the previous run, so
# the test always resolves the jar just built.
rm -rf "${local_repo:?}/$group_path/$version"

cdk_version=$(node -p "require('aws-cdk-lib/package.json').version")
constructs_version=$(node -p "require('constructs/package.json').version")

rm -rf "$root/.local/java-smoke-target"
cd test/java
mvn -B -q "${repo_args[@]}" \
  "-Dmicrovms.version=$version" "-Dcdk.version=$cdk_version" "-Dconstructs.version=$constructs_version" \
  "-Dcdknag.version=$(node -p "require('cdk-nag/package.json').version")" \
  "-Dmicrovms.repository=file://$root/dist/java" \
  test "$@"
tests=$(cat "$root"/.local/java-smoke-target/surefire-reports/TEST-*.xml | grep -o '<testsuite [^>]*' | grep -o ' tests="[0-9]*"' | tr -dc '0-9\n' | awk '{ n += $1 } END { print n }')
echo "smoke-java: $tests tests passed"

# Every README example, as translated to Java for API.md and the javadoc, compiles against the
# jar, aws-cdk-lib, constructs and cdk-nag (scripts/translations.mjs wraps each in a class).
cd "$root"
node scripts/translations.mjs write java .local/readme-java
(cd test/java && mvn -B -q "${repo_args[@]}" \
  "-Dmicrovms.version=$version" "-Dcdk.version=$cdk_version" "-Dconstructs.version=$constructs_version" \
  "-Dcdknag.version=$(node -p "require('cdk-nag/package.json').version")" \
  "-Dmicrovms.repository=file://$root/dist/java" \
  dependency:build-classpath -Dmdep.includeScope=test "-Dmdep.outputFile=$root/.local/readme-java.classpath")
javac -d .local/readme-java/classes -cp "$(cat .local/readme-java.classpath)" .local/readme-java/*.java
echo "smoke-java: $(ls .local/readme-java/*.java | wc -l) README example(s) compile in Java"

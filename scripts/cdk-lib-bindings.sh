#!/usr/bin/env bash
# Makes the aws-cdk-lib version this library builds against (node_modules/aws-cdk-lib) available
# to pip or Maven, for packaging and the smoke tests:
#
#   scripts/cdk-lib-bindings.sh python   # before scripts/smoke-python.sh
#   scripts/cdk-lib-bindings.sh java     # before `npx projen package:java` and scripts/smoke-java.sh
#
# Normally PyPI and Maven Central have it and this only checks. When a registry does not have it
# (yet: the registries this machine reaches lag npm), the bindings are generated from the npm
# package with jsii-pacmak, exactly as aws-cdk-lib's own release does, once:
#   python: a wheel in .local/cdk-lib-wheels (pip --find-links), ~4 minutes the first time;
#   java:   the jar installed into ~/.m2, ~15 minutes the first time.
# Later runs find them and take about a second.
set -euo pipefail
cd "$(dirname "$0")/.."

lang=${1:?usage: scripts/cdk-lib-bindings.sh python|java}
cdk_version=$(node -p "require('aws-cdk-lib/package.json').version")
build=.local/cdk-lib-build

# generate <npm package dir>...: jsii-pacmak builds them (in dependency order) into $build/$lang.
generate() {
  echo "cdk-lib-bindings: generating the $lang bindings of $* from node_modules (once)" >&2
  rm -rf "${build:?}/$lang"
  mkdir -p "$build"
  local started=$SECONDS
  local extra=()
  # Test dependencies only: no javadoc (aws-cdk-lib's takes longer than compiling it).
  # Maven's local repository (not pacmak's throwaway one) caches the plugins and dependencies.
  if [ "$lang" = java ]; then extra=(--mvn-define maven.javadoc.skip=true --maven-local-repository "$repo"); fi
  npx jsii-pacmak --target "$lang" --outdir "$build/$lang" "${extra[@]}" "$@"
  echo "cdk-lib-bindings: generated in $((SECONDS - started)) s" >&2
}

case "$lang" in
  python)
    wheelhouse=.local/cdk-lib-wheels
    if compgen -G "$wheelhouse/aws_cdk_lib-$cdk_version-*.whl" >/dev/null; then
      exit 0
    fi
    probe=$(mktemp -d)
    trap 'rm -rf "$probe"' EXIT
    if python3 -m pip download -q --disable-pip-version-check --no-deps -d "$probe" "aws-cdk-lib==$cdk_version" >/dev/null 2>&1; then
      exit 0
    fi
    generate node_modules/aws-cdk-lib
    mkdir -p "$wheelhouse"
    cp "$build"/python/python/aws_cdk_lib-"$cdk_version"-*.whl "$wheelhouse"/
    ;;
  java)
    repo=${MAVEN_LOCAL_REPOSITORY:-$HOME/.m2/repository}
    repo_args=()
    if [ -n "${MAVEN_LOCAL_REPOSITORY:-}" ]; then repo_args=("-Dmaven.repo.local=$MAVEN_LOCAL_REPOSITORY"); fi
    # aws-cdk-lib and its jsii dependencies (cloud-assembly-schema, ...), in the versions installed
    # in node_modules: "<npm dir> <groupId> <artifactId> <version>" per line.
    modules=$(node -e '
      const fs = require("fs"), path = require("path"), zlib = require("zlib");
      const lib = path.dirname(require.resolve("aws-cdk-lib/package.json"));
      let asm = JSON.parse(fs.readFileSync(path.join(lib, ".jsii"), "utf8"));
      if (asm.schema === "jsii/file-redirect") asm = JSON.parse(zlib.gunzipSync(fs.readFileSync(path.join(lib, asm.filename))));
      const dirs = [lib, ...Object.keys(asm.dependencies ?? {}).filter((d) => d !== "constructs")
        .map((d) => path.dirname(require.resolve(`${d}/package.json`, { paths: [lib] })))];
      for (const dir of dirs) {
        const pkg = require(path.join(dir, "package.json"));
        const maven = pkg.jsii.targets.java.maven;
        console.log([path.relative(process.cwd(), dir), maven.groupId, maven.artifactId, pkg.version].join(" "));
      }')
    missing=()
    while read -r dir group artifact version; do
      if [ -f "$repo/${group//.//}/$artifact/$version/$artifact-$version.jar" ]; then continue; fi
      if mvn -B -q "${repo_args[@]}" dependency:get "-Dartifact=$group:$artifact:$version" -Dtransitive=false >/dev/null 2>&1; then continue; fi
      missing+=("$dir")
    done <<< "$modules"
    if [ ${#missing[@]} -eq 0 ]; then
      exit 0
    fi
    echo "cdk-lib-bindings: Maven has none of: ${missing[*]}" >&2
    generate "${missing[@]}"
    # install-file also writes maven-metadata-local.xml, so that the version ranges in the poms
    # (aws-cdk-lib's, the library's) resolve to these versions.
    while read -r dir group artifact version; do
      for m in "${missing[@]}"; do
        if [ "$m" = "$dir" ]; then
          d="$build/java/java/${group//.//}/$artifact/$version"
          mvn -B -q "${repo_args[@]}" install:install-file "-Dfile=$d/$artifact-$version.jar" "-DpomFile=$d/$artifact-$version.pom"
        fi
      done
    done <<< "$modules"
    ;;
  *)
    echo "usage: scripts/cdk-lib-bindings.sh python|java" >&2
    exit 1
    ;;
esac
echo "cdk-lib-bindings: aws-cdk-lib $cdk_version is available to $lang" >&2

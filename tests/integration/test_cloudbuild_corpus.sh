#!/usr/bin/env bash
# Conformance over real cloudbuild.yaml files (tests/data/cloudbuild/, the
# repository's copy of ../shared/corpus/cloudbuild/; test_shared_corpus.sh
# checks that the copy is current):
# each file's expected verdict, as Cloud Build would give it for a manual
# build (MUST_MATCH, no trigger substitutions), is written below next to the
# file's name; `kiln validate` must agree, and `kiln graph` must list the
# file's steps. Files that need a trigger's substitutions are checked again
# with those passed through --substitutions, and then are valid.
set -uo pipefail
self=$(readlink -f "$0")
: "${KILN:?}" "${KILN_SOURCE_DIR:?}"
corpus=$KILN_SOURCE_DIR/tests/data/cloudbuild
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"
pass=0 fail=0
ok() { pass=$((pass + 1)); }
bad() { fail=$((fail + 1)); echo "FAIL - $*"; }

# file | steps (valid files) or 0 | expected error text ("" = valid) | --substitutions that make it valid
#      | images: pushed after the steps (graph shows them as steps of their own)
# Run outside any git repository, SHORT_SHA is empty; files that tag images
# with it get SHORT_SHA from --substitutions (as `gcloud builds submit` would
# need too: an image tag "name:" is refused by docker-build's checks).
expect() {
    local file=$1 steps=$2 err=$3 subs=${4:-} images=${5:-0}
    local path=$corpus/$file
    [ -f "$path" ] || { bad "$file: missing from the corpus"; return; }
    local out rc
    out=$("$KILN" validate "$path" 2>&1); rc=$?
    if [ -z "$err" ]; then
        if [ $rc -eq 0 ] && grep -q "valid ($steps step" <<<"$out"; then ok; else bad "$file: expected valid with $steps steps, got rc=$rc: $(head -3 <<<"$out")"; fi
        local n
        n=$("$KILN" graph "$path" 2>/dev/null | grep -c '^#')
        if [ "$n" = "$((steps + images))" ]; then ok; else bad "$file: graph shows $n steps, expected $steps + $images image pushes"; fi
        valid_files+=("$file")
    else
        if [ $rc -eq 2 ] && grep -qF -- "$err" <<<"$out"; then ok; else bad "$file: expected exit 2 with '$err', got rc=$rc: $(head -3 <<<"$out")"; fi
        if grep -qE "^[^ ]+\.yaml:[0-9]+:[0-9]+: error: " <<<"$out"; then ok; else bad "$file: the error has no FILE:LINE:COL"; fi
        if [ -n "$subs" ]; then
            out=$("$KILN" validate "$path" --substitutions "$subs" 2>&1); rc=$?
            if [ $rc -eq 0 ]; then ok; else bad "$file: with --substitutions $subs still invalid: $(head -3 <<<"$out")"; fi
        fi
    fi
}

valid_files=()
nm='is not matched in the substitution data'
expect GoogleCloudPlatform__cloud-build-local__cloudbuild.yaml 3 ""
expect GoogleCloudPlatform__cloud-build-local__integration_tests__cloudbuild_buildid.yaml 2 ""
expect GoogleCloudPlatform__cloud-build-local__integration_tests__cloudbuild_builtin_substitutions.yaml 0 \
    'substitution key "COMMIT_SHA" does not respect format "^_[A-Z0-9_]+$"'
expect GoogleCloudPlatform__cloud-build-local__integration_tests__cloudbuild_substitutions.yaml 1 ""
expect GoogleCloudPlatform__cloud-build-local__integration_tests__cloudbuild_substitutions2.yaml 0 \
    "key in the template \"_SUBSTITUTE_ME\" $nm; substitutions = map[_MESSAGE:hello world]" "_SUBSTITUTE_ME=x"
expect GoogleCloudPlatform__cloud-build-local__integration_tests__cloudbuild_substitutions3.yaml 0 \
    "key in the template \"_MESSAGE\" $nm; substitutions = map[]" "_MESSAGE=hi"
expect GoogleCloudPlatform__cloud-build-local__integration_tests__cloudbuild_volumes.yaml 4 ""
expect GoogleCloudPlatform__cloud-build-samples__build-sample.cloudbuild.yaml 0 \
    "key in the template \"_DIR\" $nm" "_DIR=app"
expect GoogleCloudPlatform__cloud-build-samples__mig-blue-green__testing__test.cloudbuild.yaml 5 ""
expect GoogleCloudPlatform__cloud-build-samples__multiple-node-versions-example__cloudbuild.yaml 0 \
    "key in the template \"_NODE_VERSION\" $nm" "_NODE_VERSION=20"
expect GoogleCloudPlatform__cloud-build-samples__private-pool__cloudbuild.yaml 2 ""
expect GoogleCloudPlatform__cloud-build-samples__python-example-flask__cloudbuild.yaml 0 \
    "key in the template \"_ARTIFACT_REGISTRY_REPO\" $nm" "_ARTIFACT_REGISTRY_REPO=repo,SHORT_SHA=abc1234"
expect GoogleCloudPlatform__cloud-build-samples__quickstart-build__cloudbuild.yaml 1 "" "" 1
expect GoogleCloudPlatform__cloud-build-samples__quickstart-deploy__cloudbuild.yaml 1 ""
expect GoogleCloudPlatform__cloud-build-samples__run-example-builddeploy__cloudbuild.yaml 0 \
    "key in the template \"_REPO_NAME\" $nm" "_REPO_NAME=repo,SHORT_SHA=abc1234"
expect GoogleCloudPlatform__cloud-build-samples__scan-build-example__cloudbuild.yaml 0 \
    "key in the template \"_SEVERITY\" $nm" "_SEVERITY=HIGH"
expect GoogleCloudPlatform__cloud-build-samples__sql-proxy__cloudbuild.yaml 0 \
    'key "_AR_REPO_REGION" in the substitution data is not matched in the template'
expect GoogleCloudPlatform__cloud-builders-community__android__examples__simple-cloudbuild.yaml 0 \
    "key in the template \"_CACHE_BUCKET\" $nm" "_CACHE_BUCKET=b,_ARTIFACT_BUCKET=a"
expect GoogleCloudPlatform__cloud-builders-community__base-image-builder__cloudbuild.yaml 0 \
    "repeated string fields containing one element must be specified like ['foo'], not 'foo'"
expect GoogleCloudPlatform__cloud-builders-community__envsubst__cloudbuild.yaml 9 "" "" 1
expect GoogleCloudPlatform__cloud-builders-community__kubectl_wait_for_job__cloudbuild.yaml 1 "" "" 1
expect GoogleCloudPlatform__cloud-builders__docker__cloudbuild.yaml 9 "" "" 4
expect GoogleCloudPlatform__cloud-builders__gke-deploy__doc__app__cloudbuild-with-configs.yaml 0 \
    "option 'tags': \":\" has an empty tag" "_IMAGE_NAME=gcr.io/p/app,_IMAGE_VERSION=1"
expect GoogleCloudPlatform__cloud-builders__gke-deploy__test__cloudbuild_gcb_run.yaml 4 ""
expect GoogleCloudPlatform__cloud-builders__kubectl__examples__pods-list__cloudbuild.yaml 2 ""
expect GoogleCloudPlatform__cloud-builders__mvn__cloudbuild.yaml 18 "" "" 7
expect GoogleCloudPlatform__emblem__ops__canary.cloudbuild.yaml 0 \
    "key in the template \"_BODY\" $nm" "_BODY=b,_ENV=e,_SERVICE=s,_REGION=r,_REVISION=v,_TRAFFIC=10,_IMAGE_NAME=i"
expect GoogleCloudPlatform__emblem__ops__deploy.cloudbuild.yaml 2 ""
expect GoogleCloudPlatform__microservices-demo__cloudbuild.yaml 0 \
    "key in the template \"_ZONE\" $nm" "_ZONE=z,_CLUSTER=c"
expect googleforgames__agones__build__release__cloudbuild.yaml 0 "key in the template \"_VERSION\" $nm" "_VERSION=1.0.0"
expect kubernetes-sigs__cluster-api__cloudbuild.yaml 1 ""
expect kubernetes__ingress-nginx__cloudbuild.yaml 1 ""
expect kubernetes__kube-state-metrics__cloudbuild.yaml 1 ""

# Every corpus file has a verdict above.
for f in "$corpus"/*.yaml; do
    grep -qF "$(basename "$f")" "$self" || bad "$(basename "$f"): no expected verdict in this test"
done

# A valid file runs on this machine until a missing tool stops it, and says so.
out=$("$KILN" run "$corpus/GoogleCloudPlatform__cloud-build-samples__quickstart-build__cloudbuild.yaml" \
      --workspace "$work" --report r.json 2>&1); rc=$?
if [ $rc -ne 2 ]; then ok; else bad "quickstart-build: run rejected the file"; fi
if grep -q "image 'gcr.io/cloud-builders/docker' is not used" <<<"$out"; then ok; else bad "quickstart-build: no note about the unused image: $out"; fi
if command -v docker >/dev/null || grep -qE "(cannot run 'docker': not found|docker: not found)" <<<"$out"; then ok; else bad "quickstart-build: the missing tool is not named: $out"; fi
out=$("$KILN" validate "$corpus/GoogleCloudPlatform__cloud-builders__gke-deploy__doc__app__cloudbuild-with-configs.yaml" --substitutions _IMAGE_NAME=gcr.io/p/app,_IMAGE_VERSION=1 2>&1)
if grep -q "'docker build' runs through plugin 'docker-build'" <<<"$out"; then ok; else bad "gke-deploy: docker build not run through docker-build: $out"; fi
if grep -q "'docker push' runs through plugin 'docker-build'" <<<"$out"; then ok; else bad "gke-deploy: docker push not run through docker-build: $out"; fi
if grep -q "'gke-deploy apply' runs through plugin 'k8s-deploy'" <<<"$out"; then ok; else bad "gke-deploy: gke-deploy apply does not run through k8s-deploy: $out"; fi

# Every valid file also runs as a dry run, on a machine where its tools are
# missing (PATH holds only a shell, echo and cat; no Docker engine) and without the
# repository it came from: it goes as far as it can, and the step that stops
# it says why (a tool not found, a Dockerfile or directory of the repository).
mkdir -p bin
for t in sh bash echo cat; do ln -sf "$(command -v $t)" bin/$t; done
for file in "${valid_files[@]}"; do
    ws=$work/run-${file%.yaml}
    mkdir -p "$ws"
    out=$(cd "$ws" && env PATH="$work/bin" DOCKER_HOST=unix://$work/no-engine.sock \
          "$KILN" run --dry-run --kill-grace 1s "$corpus/$file" --report r.json --log-dir logs --quiet 2>&1); rc=$?
    if [ $rc -eq 0 ] || [ $rc -eq 1 ]; then ok; else bad "$file: dry run exited $rc: $(tail -3 <<<"$out")"; continue; fi
    [ $rc -eq 0 ] && continue
    reason=$(python3 -c '
import json,sys
j = json.load(open(sys.argv[1]))
print(next((s.get("reason") or "" for s in j["steps"] if s["status"] in ("FAILURE", "TIMEOUT")), ""))' "$ws/r.json")
    log=$(cat "$ws"/logs/*.log 2>/dev/null)
    if [[ $file == *cloudbuild_volumes.yaml ]]; then
        bad "$file: the volumes test should run to the end: $reason $(tail -3 <<<"$out")"
    elif grep -qE "not found|non-zero status: 127|no Docker engine|no Dockerfile at|working directory .* does not exist" \
            <<<"$reason $out $log"; then ok  # a missing tool, or the repository's files the corpus lacks
    else bad "$file: stopped, but not by a missing tool or file: $reason"; fi
done

echo "# $pass passed, $fail failed"
[ $fail -eq 0 ]

# SPDX-License-Identifier: MIT
# What the seed story must show (sourced by test_seed.sh and
# test_k8s_story.sh, not run): after scripts/run-example.sh ran into EX with
# its output in OUT, `seed_checks EX OUT` checks (with the caller's `check`):
#  - the right pipeline ran for each repository and branch;
#  - the model build's sub-build ran the API at the same branch, with the
#    API's commit and the model's SHORT_SHA passed down;
#  - every step of the story is one of kiln's own plugins (no step names a
#    plugin that does not exist), the image is built and pushed by
#    docker-build;
#  - deploys were recorded by mock-deploy (Cloud Run on staging, Kubernetes
#    on master), and the image's build and push by docker-build (no Docker
#    engine answers here), in the build's plan file;
#  - no trigger fired for a branch none watches, and a push touching only
#    ignored files built nothing;
#  - kiln serve ran the weekly retraining on its test clock.
# It leaves B (the builds' directory), the reports ms, mm, as, am (model and
# API, staging and master), sr (the scheduled build's) and q, one, for the
# caller's own checks. Needs KILN_BUILD_DIR.

# q REPORT EXPR: evaluate a Python expression over the report `r`
q() { python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); print(eval(sys.argv[2]))' "$1" "$2"; }
one() { ls -d "$B"/$1 2>/dev/null | head -1; }

seed_checks() {
    EX=$1 OUT=$2
    B=$EX/builds
    ls "$B" >"$EX/builds.txt"
    api_staging=$(git -C "$EX/srv/purchase_predict_api.git" rev-parse staging)
    api_master=$(git -C "$EX/srv/purchase_predict_api.git" rev-parse master)

    check "four builds ran (one per trigger)" test "$(wc -l <"$EX/builds.txt")" -eq 4
    for t in purchase-predict-staging purchase-predict-master purchase-predict-api-staging purchase-predict-api-master; do
      check "trigger $t built once" test "$(grep -c "^$t-[0-9a-f]\{7\}$" "$EX/builds.txt")" -eq 1
    done

    ms=$(one 'purchase-predict-staging-*')/report.json
    mm=$(one 'purchase-predict-master-*')/report.json
    as=$(one 'purchase-predict-api-staging-*')/report.json
    am=$(one 'purchase-predict-api-master-*')/report.json
    for r in "$ms" "$mm" "$as" "$am"; do
      check "$(basename "$(dirname "$r")") succeeded" test "$(q "$r" 'r["status"]')" = SUCCESS
    done
    check "api staging ran cloudbuild-staging.yaml" grep -q 'cloudbuild-staging.yaml$' <<<"$(q "$as" 'r["pipeline"]')"
    check "api master ran cloudbuild-master.yaml" grep -q 'cloudbuild-master.yaml$' <<<"$(q "$am" 'r["pipeline"]')"
    check "model staging: BRANCH_NAME staging, _KEDRO_ENV staging" test \
      "$(q "$ms" 'r["substitutions"]["BRANCH_NAME"]+" "+r["substitutions"]["_KEDRO_ENV"]')" = "staging staging"
    check "model master: _KEDRO_ENV production (trigger substitution)" test \
      "$(q "$mm" 'r["substitutions"]["_KEDRO_ENV"]')" = production

    # The sub-build: nested under the api step, same branch, API commit, model SHA.
    sub='[s for s in r["steps"] if s["key"]=="api"][0]["builds"][0]'
    for pair in "$ms:staging:$api_staging:cloudrun-deploy" "$mm:master:$api_master:k8s-deploy"; do
      IFS=: read -r r br sha plugin <<<"$pair"
      check "sub-build ($br) is nested in the report and succeeded" test "$(q "$r" "$sub[\"status\"]")" = SUCCESS
      check "sub-build ($br) has depth 1" test "$(q "$r" "$sub[\"depth\"]")" = 1
      check "sub-build ($br) ran at BRANCH_NAME=$br" test "$(q "$r" "$sub[\"substitutions\"][\"BRANCH_NAME\"]")" = "$br"
      check "sub-build ($br) ran the API's $br commit" test "$(q "$r" "$sub[\"substitutions\"][\"COMMIT_SHA\"]")" = "$sha"
      check "sub-build ($br) got the model's SHORT_SHA as _MODEL_SHA" test \
        "$(q "$r" "$sub[\"substitutions\"][\"_MODEL_SHA\"]")" = "$(q "$r" 'r["substitutions"]["SHORT_SHA"]')"
      check "sub-build ($br) ran cloudbuild-$br.yaml" grep -q "cloudbuild-$br.yaml\$" <<<"$(q "$r" "$sub[\"pipeline\"]")"
      check "sub-build ($br) deploy recorded by mock-deploy as $plugin" test \
        "$(q "$r" "[s for s in $sub[\"steps\"] if s[\"key\"]==\"deploy\"][0][\"plan\"][0][\"plugin\"]")" = "$plugin"
      plan=$(q "$r" "$sub[\"plan\"]")
      check "sub-build ($br) plan file lists the build, the push and the deploy" test \
        "$(python3 -c 'import json,sys; print(" ".join(json.loads(l)["step"] for l in open(sys.argv[1])))' "$plan")" = "build push deploy"
      check "sub-build ($br) plan holds docker-build's build and push of the image" python3 -c '
import json,sys
e={j["step"]:j for j in map(json.loads, open(sys.argv[1]))}
tag="gcr.io/local/purchase-predict-api:"+sys.argv[2][:7]
b,p=e["build"],e["push"]
assert b["plugin"]=="docker-build" and p["plugin"]=="docker-build", (b,p)
assert [r["kind"] for r in b["requests"]]==["docker-build"] and b["requests"][0]["method"]=="POST", b
assert "/build?" in b["requests"][0]["url"] and b["requests"][0]["image"]==tag, b
assert [(r["kind"],r["image"]) for r in p["requests"]]==[("docker-push",tag)], p
' "$plan" "$sha"
    done
    # Every step of every build (sub-builds included) ran one of kiln's plugins.
    all_uses() { q "$1" '" ".join(sorted({s["uses"] for b in [r]+[c for s in r["steps"] for c in s.get("builds",[])] for s in b["steps"]}))'; }
    installed=$(KILN_PLUGIN_PATH=$KILN_BUILD_DIR/plugins "$KILN_BUILD_DIR/runner/kiln" plugins --json |
      python3 -c 'import json,sys; d=json.load(sys.stdin); print(" ".join(p["name"] for p in (d["plugins"] if isinstance(d,dict) else d)))')
    for r in "$ms" "$mm" "$as" "$am"; do
      for u in $(all_uses "$r"); do
        check "$(basename "$(dirname "$r")"): step plugin $u is one of kiln's" grep -qw -- "$u" <<<"$installed"
      done
    done
    check "api master: build and push run through docker-build" test \
      "$(q "$am" '" ".join(s["uses"] for s in r["steps"] if s["key"] in ("build","push"))')" = "docker-build docker-build"
    check "no step probes for docker in a script" bash -c "! grep -rq 'command -v docker' '$KILN_SOURCE_DIR/pipelines'"
    check "the train step really ran (model output)" test -s "$(q "$ms" '[s for s in r["steps"] if s["key"]=="train"][0]["outputs"]["model"]')"
    check "the log files exist" test -s "$(dirname "$ms")/logs/train.log"
    check "push to feature-x: evaluated" grep -q "not fired purchase-predict-staging: branch 'feature-x' does not match" "$OUT"
    nothing_for_feature() { grep -A5 'refs/heads/feature-x' "$OUT" | grep -q 'no trigger fired; nothing to build'; }
    check "push to feature-x: no trigger fired, nothing built" nothing_for_feature
    check "docs-only push: skipped by ignoredFiles" grep -q 'purchase-predict-staging: every changed file (1) matches ignoredFiles' "$OUT"
    check "output names the stand-in for kedro" grep -q 'kedro is not installed' "$OUT"
    check "output says plainly that no Docker engine answered" grep -q 'dry run: no Docker engine answered at ' "$OUT"
    check "output says the build was recorded, not run" grep -q 'dry run: the build of gcr.io/local/purchase-predict-api:[0-9a-f]\{7\} is recorded in the plan, not run' "$OUT"
    check "the plan file of the API's own master build holds its build and push" test \
      "$(python3 -c 'import json,sys; print(" ".join(json.loads(l)["step"] for l in open(sys.argv[1])))' "$(q "$am" 'r["plan"]')")" = "build push deploy"

    # 5. kiln serve, the same triggers file, its clock at Monday 03:00: the
    # weekly retraining (purchase-predict-master's schedule) ran, sub-build too.
    check "kiln serve started the weekly retraining at Monday 03:00" \
      grep -q 'schedule: trigger purchase-predict-master, scheduled run of 2026-12-07 03:00 UTC: build ' "$OUT"
    sr=$(ls "$EX"/serve/builds/*/report.json 2>/dev/null | head -1)
    check "one scheduled build, in kiln serve's data directory" test "$(ls "$EX"/serve/builds/*/report.json | wc -l)" -eq 1
    check "the scheduled build succeeded: test, train and the API's sub-build" \
      test "$(q "$sr" 'r["status"]+" "+",".join(s["key"]+":"+s["status"] for s in r["steps"])+" "+r["steps"][2]["builds"][0]["status"]')" = \
      "SUCCESS test:SUCCESS,train:SUCCESS,api:SUCCESS SUCCESS"
    check "kiln builds list shows it" grep -Eq '^[0-9a-f-]{36} SUCCESS +purchase-predict-master +master ' "$OUT"
}

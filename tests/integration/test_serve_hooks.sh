#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# kiln serve's GitLab, Gitea and git webhooks (issue 12): the forges'
# documented push bodies (tests/data/hooks/, repository URLs and commit ids
# replaced by a real bare repository's), verified as each forge signs them
# (X-Gitlab-Token; X-Gitea-Signature: HMAC-SHA256 hex of the body, signed
# here by python3's hmac), and a real `git push` to a bare repository whose
# post-receive hook (kiln hook install --server) posts to POST /hooks/git.
# Bad proof 401, over 25 MiB 413, not JSON 400, another event 202: one log
# line each, no build.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/serve_lib.sh"
make_repo
cat >>"$TMP/triggers.yaml" <<YAML
- name: app-release
  repo: $TMP/app.git
  tag: ^v[0-9]+\$
YAML
git -C "$TMP/work" tag v1 master
git -C "$TMP/work" push -q "$TMP/app.git" v1
start_serve
master=$(git -C "$TMP/app.git" rev-parse master)
feature=$(git -C "$TMP/app.git" rev-parse feature)
DATA=$KILN_SOURCE_DIR/tests/data/hooks
nbuilds() { api GET "/api/builds?pageSize=100" | jq_ 'len(j["builds"])'; }
loglines() { grep -c "$1 delivery $2" "$TMP/serve.log" || true; }
# body SRC OUT REF AFTER: the documented body with our repository and commit
body() {
    python3 - "$@" "$TMP/app.git" <<'PY'
import json, sys
src, out, ref, after, url = sys.argv[1:6]
j = json.load(open(src))
j["ref"], j["after"] = ref, after
for k in ("project", "repository"):
    if isinstance(j.get(k), dict):
        for f in ("git_http_url", "http_url", "clone_url"):
            if f in j[k]:
                j[k][f] = url
if "checkout_sha" in j:
    j["checkout_sha"] = after
json.dump(j, open(out, "w"), indent=2)
PY
}
# post FORGE EVENT DELIVERY FILE [HEADER...]: prints the answer; code in $TMP/code
post() {
    local forge=$1 event=$2 delivery=$3 file=$4; shift 4
    local evh delh
    case $forge in
    gitlab) evh=X-Gitlab-Event delh=X-Gitlab-Event-UUID ;;
    gitea) evh=X-Gitea-Event delh=X-Gitea-Delivery ;;
    esac
    curl -s -o "$TMP/resp.json" -w '%{http_code}' -X POST -H "$evh: $event" -H "$delh: $delivery" \
        -H 'Content-Type: application/json' "$@" --data-binary "@$file" "$BASE/hooks/$forge" >"$TMP/code"
    cat "$TMP/resp.json"
}
gitea_sig() { python3 -c 'import hmac,hashlib,sys; print(hmac.new(sys.argv[1].encode(), open(sys.argv[2],"rb").read(), hashlib.sha256).hexdigest())' "$1" "$2"; }

# --- GitLab
body "$DATA/gitlab-push.json" "$TMP/gl.json" refs/heads/master "$master"
post gitlab "Push Hook" gl-1 "$TMP/gl.json" -H "X-Gitlab-Token: $SECRET" >"$TMP/r.json"
check "GitLab Push Hook: 200" test "$(code)" = 200
check "... app-master fires" test "$(jq_ '[t["name"] for t in j["triggers"] if t["fired"]]' <"$TMP/r.json")" = "['app-master']"
glid=$(jq_ 'j["builds"][0]' <"$TMP/r.json")
check "... its build succeeds" wait_status 120 "$glid" SUCCESS FAILURE INTERNAL_ERROR
check "... SUCCESS, master's commit, from gitlab" \
    test "$(api GET "/api/builds/$glid" | jq_ 'j["status"]+" "+j["commit"]+" "+j["source"]')" = "SUCCESS $master gitlab"
check "4 commits pushed, 2 listed: the files are not all known (filters not applied), and the log says so" \
    grep -q "gitlab delivery gl-1: push $TMP/app.git refs/heads/master (${master:0:12}), 2 files (not all known): 1 build" "$TMP/serve.log"
post gitlab "Push Hook" gl-1 "$TMP/gl.json" -H "X-Gitlab-Token: $SECRET" >"$TMP/r.json"
check "the same X-Gitlab-Event-UUID again: 200, nothing started" test "$(code)/$(jq_ 'len(j["builds"])' <"$TMP/r.json")" = 200/0
body "$DATA/gitlab-push.json" "$TMP/gltag.json" refs/tags/v1 "$master"
post gitlab "Tag Push Hook" gl-tag "$TMP/gltag.json" -H "X-Gitlab-Token: $SECRET" >"$TMP/r.json"
check "GitLab Tag Push Hook: the tag trigger fires" \
    test "$(code) $(jq_ '[t["name"] for t in j["triggers"] if t["fired"]]' <"$TMP/r.json")" = "200 ['app-release']"
tagid=$(jq_ 'j["builds"][0]' <"$TMP/r.json")
check "... and its build succeeds" wait_status 120 "$tagid" SUCCESS FAILURE INTERNAL_ERROR
check "... SUCCESS" test "$(bstatus "$tagid")" = SUCCESS
n=$(nbuilds)
post gitlab "Push Hook" gl-bad "$TMP/gl.json" -H "X-Gitlab-Token: wrong" >/dev/null
check "GitLab, wrong X-Gitlab-Token: 401" test "$(code)" = 401
check "... one log line" test "$(loglines gitlab gl-bad)" = 1
post gitlab "Push Hook" gl-none "$TMP/gl.json" >/dev/null
check "GitLab, no X-Gitlab-Token: 401" test "$(code)" = 401
echo '{"object_kind": "issue", "object_attributes": {"id": 1}}' >"$TMP/issue.json"
post gitlab "Issue Hook" gl-issue "$TMP/issue.json" -H "X-Gitlab-Token: $SECRET" >"$TMP/r.json"
check "GitLab Issue Hook: 202 with a note" test "$(code) $(jq_ 'j["note"]' <"$TMP/r.json")" = "202 kiln builds on push events only"
check "... one log line" test "$(loglines gitlab gl-issue)" = 1
echo '{"object_kind": "push", "ref": ' >"$TMP/broken.json"
post gitlab "Push Hook" gl-broken "$TMP/broken.json" -H "X-Gitlab-Token: $SECRET" >/dev/null
check "GitLab, not JSON: 400" test "$(code)" = 400
check "... one log line" test "$(loglines gitlab gl-broken)" = 1
echo '{"object_kind": "push", "ref": "refs/heads/master"}' >"$TMP/short.json"
post gitlab "Push Hook" gl-short "$TMP/short.json" -H "X-Gitlab-Token: $SECRET" >"$TMP/r.json"
check "GitLab, a push without after or project: 400, saying what is missing" \
    grep -q "a push needs ref (refs/heads/... or refs/tags/...), after and the repository (project.git_http_url)" "$TMP/r.json"
head -c $((26 << 20)) /dev/zero | tr '\0' ' ' >"$TMP/big.json"
post gitlab "Push Hook" gl-big "$TMP/big.json" -H "X-Gitlab-Token: $SECRET" >/dev/null
check "GitLab, over 25 MiB: 413" test "$(code)" = 413
check "... one log line" test "$(loglines gitlab gl-big)" = 1

# --- Gitea
body "$DATA/gitea-push.json" "$TMP/gt.json" refs/heads/feature "$feature"
post gitea push gt-1 "$TMP/gt.json" -H "X-Gitea-Signature: $(gitea_sig "$SECRET" "$TMP/gt.json")" >"$TMP/r.json"
check "Gitea push: 200" test "$(code)" = 200
check "... app-feature (repository by name) fires" \
    test "$(jq_ '[t["name"] for t in j["triggers"] if t["fired"]]' <"$TMP/r.json")" = "['app-feature']"
gtid=$(jq_ 'j["builds"][0]' <"$TMP/r.json")
check "... its build succeeds at feature's commit, from gitea" wait_status 120 "$gtid" SUCCESS FAILURE INTERNAL_ERROR
check "... SUCCESS" test "$(api GET "/api/builds/$gtid" | jq_ 'j["status"]+" "+j["commit"]+" "+j["source"]')" = "SUCCESS $feature gitea"
post gitea push gt-1 "$TMP/gt.json" -H "X-Gitea-Signature: $(gitea_sig "$SECRET" "$TMP/gt.json")" >"$TMP/r.json"
check "the same X-Gitea-Delivery again: nothing started" test "$(jq_ 'len(j["builds"])' <"$TMP/r.json")" = 0
post gitea push gt-bad "$TMP/gt.json" -H "X-Gitea-Signature: $(gitea_sig wrong "$TMP/gt.json")" >/dev/null
check "Gitea, a signature by another secret: 401" test "$(code)" = 401
check "... one log line" test "$(loglines gitea gt-bad)" = 1
post gitea push gt-gh "$TMP/gt.json" -H "X-Gitea-Signature: sha256=$(gitea_sig "$SECRET" "$TMP/gt.json")" >/dev/null
check "Gitea, GitHub's sha256= form: 401 (Gitea signs bare hex)" test "$(code)" = 401
post gitea push gt-forgejo-x "$TMP/gt.json" -H "X-Forgejo-Signature: $(gitea_sig "$SECRET" "$TMP/gt.json")" \
    -H "X-Forgejo-Delivery: fj-1" >"$TMP/r.json"
check "Forgejo's X-Forgejo-Signature is taken too (a new delivery: one build)" \
    test "$(code)/$(jq_ 'len(j["builds"])' <"$TMP/r.json")" = 200/1
post gitea issues gt-issue "$TMP/issue.json" -H "X-Gitea-Signature: $(gitea_sig "$SECRET" "$TMP/issue.json")" >/dev/null
check "Gitea issues event: 202" test "$(code)" = 202
post gitea push gt-broken "$TMP/broken.json" -H "X-Gitea-Signature: $(gitea_sig "$SECRET" "$TMP/broken.json")" >/dev/null
check "Gitea, not JSON: 400" test "$(code)" = 400
post gitea push gt-big "$TMP/big.json" -H "X-Gitea-Signature: x" >/dev/null
check "Gitea, over 25 MiB: 413" test "$(code)" = 413
rm -f "$TMP/big.json"
check "none of the refused deliveries started a build (two Gitea builds since)" test "$(nbuilds)" = $((n + 2))
curl -s -o /dev/null -w '%{http_code}' -X POST --data-binary '{}' "$BASE/hooks/bitbucket" >"$TMP/code"
check "POST /hooks/bitbucket: 404" test "$(code)" = 404

# --- git: a real push to a bare repository whose hook posts to the server.
out=$("$KILN" hook install --server "$BASE" --secret-file "$TMP/hook-secret" "$TMP/app.git")
check "kiln hook install --server installs a post-receive hook" \
    grep -q "every push is posted to $BASE/hooks/git (signed)" <<<"$out"
echo "change" >>"$TMP/work/README.md"
echo "code" >"$TMP/work/main.c"
git -C "$TMP/work" add -A
git -C "$TMP/work" commit -q -m "code"
new=$(git -C "$TMP/work" rev-parse HEAD)
git -C "$TMP/work" push "$TMP/app.git" master >"$TMP/push.txt" 2>&1
check "git push shows the build the server queued" \
    grep -Eq "^remote: kiln: refs/heads/master ${new:0:12}: $BASE: 1 build queued [0-9a-f-]{36}" "$TMP/push.txt"
gid=$(sed -nE 's/^remote: kiln: refs\/heads\/master .* queued ([0-9a-f-]{36}).*/\1/p' "$TMP/push.txt")
check "... it succeeds, of the pushed commit, from git" wait_status 120 "$gid" SUCCESS FAILURE INTERNAL_ERROR
check "... SUCCESS" test "$(api GET "/api/builds/$gid" | jq_ 'j["status"]+" "+j["commit"]+" "+j["source"]')" = "SUCCESS $new git"
check "the hook sent the changed files (from git)" \
    grep -q "git delivery .*: push $TMP/app.git refs/heads/master (${new:0:12}), 2 files: 1 build" "$TMP/serve.log"
mkdir -p "$TMP/work/docs"
echo "guide" >"$TMP/work/docs/guide.md"
git -C "$TMP/work" add -A
git -C "$TMP/work" commit -q -m "docs"
git -C "$TMP/work" push "$TMP/app.git" master >"$TMP/push2.txt" 2>&1
check "a push touching only ignoredFiles (docs/**): the server queues nothing" \
    grep -q "^remote: kiln: refs/heads/master .*: 0 builds queued" "$TMP/push2.txt"
"$KILN" hook install --server "$BASE" "$TMP/app.git" >/dev/null
echo "more" >>"$TMP/work/main.c"
git -C "$TMP/work" commit -q -am "unsigned"
rc=0; git -C "$TMP/work" push "$TMP/app.git" master >"$TMP/push3.txt" 2>&1 || rc=$?
check "a hook without the secret: the server answers 401, said in the push" \
    grep -q "^remote: kiln: hook: $BASE/hooks/git answered 401" "$TMP/push3.txt"
check "... the push itself went through (post-receive)" test "$(git -C "$TMP/app.git" rev-parse master)" = "$(git -C "$TMP/work" rev-parse HEAD)"
check "... one log line" test "$(grep -c 'git delivery .*: bad X-Kiln-Signature-256: 401\|git delivery .*: no X-Kiln-Signature-256: 401' "$TMP/serve.log")" = 1
printf '#!/bin/sh\necho mine\n' >"$TMP/app.git/hooks/post-receive"
rc=0; "$KILN" hook install --server "$BASE" "$TMP/app.git" >"$TMP/inst.txt" 2>&1 || rc=$?
check "kiln hook install does not overwrite a hook it did not install" test "$rc" = 1
kill -TERM "$SERVE_PID"
wait "$SERVE_PID" || true
finish

# SPDX-License-Identifier: MIT
# Helpers of the kiln serve tests (sourced after lib.sh; not a test itself).
#
# make_repo: a real bare repository $TMP/app.git (branches master and
#   feature, each with cloudbuild.yaml) and a triggers file $TMP/triggers.yaml
#   with two triggers on it (app-master: ^master$, app-feature: ^feature$)
#   and one on another repository (other-master); app-broken runs
#   broken.yaml, a pipeline with an unknown key.
# start_serve [ARGS...]: kiln serve on a free port of 127.0.0.1 with the
#   token "t0ken" and the webhook secret "s3cret"; sets SERVE_PID, BASE.
# api METHOD PATH [BODY]: curl with the token; prints the body; `code`
#   prints the HTTP status (kept in a file: api often runs in a subshell).
# api_anon METHOD PATH [BODY]: the same without a token.
# bstatus ID: the build's status; wait_status SECS ID STATUS...: poll.
#
# The pipeline waits for the file named by _GATE (when given) before it
# ends, so a test holds a build WORKING without sleeping, and fails (exit
# 3) when _FAIL is not 0.
export GIT_AUTHOR_NAME=kiln GIT_AUTHOR_EMAIL=kiln@example.invalid
export GIT_COMMITTER_NAME=kiln GIT_COMMITTER_EMAIL=kiln@example.invalid
TOKEN=t0ken
SECRET=s3cret
printf '%s\n' "$TOKEN" >"$TMP/token"
printf '%s\n' "$SECRET" >"$TMP/hook-secret"

make_repo() {
    git init -q --bare -b master "$TMP/app.git"
    git init -q -b master "$TMP/work"
    cat >"$TMP/work/cloudbuild.yaml" <<'YAML'
options: {automapSubstitutions: true}
substitutions: {_GATE: "", _FAIL: "0"}
steps:
- id: wait
  script: |
    if [ -n "$_GATE" ]; then
      while [ ! -e "$_GATE" ]; do sleep 0.05; done
    fi
    echo "building $BRANCH_NAME at $SHORT_SHA ($TRIGGER_NAME)"
- id: check
  script: |
    echo "fail=$_FAIL"
    [ "$_FAIL" = 0 ] || exit 3
YAML
    printf 'steps:\n- id: x\n  script: echo x\n  bogus: 1\n' >"$TMP/work/broken.yaml"
    echo "# app" >"$TMP/work/README.md"
    git -C "$TMP/work" add -A
    git -C "$TMP/work" commit -q -m "first"
    git -C "$TMP/work" push -q "$TMP/app.git" master
    git -C "$TMP/work" checkout -q -b feature
    echo "feature" >"$TMP/work/feature.txt"
    git -C "$TMP/work" add -A
    git -C "$TMP/work" commit -q -m "feature"
    git -C "$TMP/work" push -q "$TMP/app.git" feature
    git -C "$TMP/work" checkout -q master
    cat >"$TMP/triggers.yaml" <<YAML
triggers:
- name: app-master
  repo: $TMP/app.git
  branch: ^master\$
  ignoredFiles: ["docs/**"]
- name: app-feature
  repo: app
  branch: ^feature\$
- name: other-master
  repo: other
  branch: ^master\$
- name: app-broken
  repo: $TMP/app.git
  branch: ^never\$
  filename: broken.yaml
YAML
}

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

start_serve() {
    local port
    port=$(free_port)
    BASE=http://127.0.0.1:$port
    "$KILN" serve --triggers "$TMP/triggers.yaml" --listen "127.0.0.1:$port" --data "$TMP/data" \
        --token-file "$TMP/token" --webhook-secret-file "$TMP/hook-secret" "$@" >>"$TMP/serve.log" 2>&1 &
    SERVE_PID=$!
    FAKE_PIDS+=("$SERVE_PID")   # lib.sh's cleanup stops it when the test ends early
    if ! wait_for 60 curl -sf -o /dev/null "$BASE/api/builds"; then
        echo "FAIL - kiln serve did not start:"; sed 's/^/  /' "$TMP/serve.log"
        exit 1
    fi
}

api() {
    local method=$1 path=$2 body=${3:-}
    curl -s -o "$TMP/resp.json" -w '%{http_code}' -X "$method" -H "Authorization: Bearer $TOKEN" \
        ${body:+-H 'Content-Type: application/json' --data-binary "$body"} "$BASE$path" >"$TMP/code"
    cat "$TMP/resp.json"
}
api_anon() {
    local method=$1 path=$2 body=${3:-}
    curl -s -o "$TMP/resp.json" -w '%{http_code}' -X "$method" \
        ${body:+-H 'Content-Type: application/json' --data-binary "$body"} "$BASE$path" >"$TMP/code"
    cat "$TMP/resp.json"
}
code() { cat "$TMP/code"; }
# jq-like: JSON on stdin, a Python expression over j
jq_() { python3 -c 'import json,sys; j=json.load(sys.stdin); print(eval(sys.argv[1]))' "$1"; }
bstatus() { curl -s "$BASE/api/builds/$1" | jq_ 'j["status"]' 2>/dev/null || echo "?"; }
is_status() { local id=$1; shift; local s; s=$(bstatus "$id"); for w in "$@"; do [ "$s" = "$w" ] && return 0; done; return 1; }
wait_status() { local secs=$1 id=$2; shift 2; wait_for "$secs" is_status "$id" "$@"; }
# run_trigger NAME BODY: POST :run, print the new build's id
run_trigger() { api POST "/api/triggers/$1:run" "$2" | jq_ 'j["id"]'; }

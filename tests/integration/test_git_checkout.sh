#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# git-checkout and submit-sub-build against real git servers started here:
# a bare repository (path and file://), `git daemon` (git://) and
# `git http-backend` behind busybox httpd with basic auth (http://), on
# 127.0.0.1. Checks the outputs (COMMIT_SHA, BRANCH_NAME, TAG_NAME, ...),
# branch / tag / exact commit / shallow, that the token never shows in the
# logs, the report or any git command line, and the sub-build rules: the
# child's failure fails the parent step, wait: false, the depth limit,
# MUST_MATCH in the child.
set -euo pipefail
: "${KILN:?}" "${KILN_PLUGIN_PATH:?}"
TMP=$(mktemp -d "${TMPDIR:-/tmp}/kiln-git-test.XXXXXX")
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$TMP"; }
trap cleanup EXIT; [ -n "${KEEP:-}" ] && trap - EXIT
FAILS=0
pass() { echo "ok   - $*"; }
fail() { FAILS=$((FAILS + 1)); echo "FAIL - $*"; }
check() { local d=$1; shift; if "$@"; then pass "$d"; else fail "$d"; fi; }
q() { python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); print(eval(sys.argv[2]))' "$1" "$2"; }
out() { q "$1" "[s for s in r['steps'] if s['key']=='$2'][0]['outputs'].get('$3','')"; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
export GIT_AUTHOR_NAME=t GIT_AUTHOR_EMAIL=t@t GIT_COMMITTER_NAME=t GIT_COMMITTER_EMAIL=t@t

# A repository: master (2 commits), staging, tag v1.0 on the first commit.
SRV=$TMP/srv
mkdir -p "$SRV" "$TMP/src"
git init -q -b master "$TMP/src/app"
cd "$TMP/src/app"
printf 'steps:\n- id: hi\n  args: [sh, -c, "echo child sees $BRANCH_NAME"]\n' >cloudbuild.yaml
echo one >file.txt; git add -A; git commit -qm one; git tag v1.0
FIRST=$(git rev-parse HEAD)
echo two >file.txt; git commit -qam two
MASTER=$(git rev-parse HEAD)
git branch staging "$FIRST"
git clone -q --bare "$TMP/src/app" "$SRV/app.git"
cd "$TMP"

# Every git command kiln runs goes through this wrapper, which records its
# command line (what `ps` would show) and its environment's git variables.
mkdir -p "$TMP/bin"
REAL_GIT=$(command -v git)
cat >"$TMP/bin/git" <<W
#!/bin/sh
printf '%s\n' "\$*" >>"$TMP/git-argv.log"
exec "$REAL_GIT" "\$@"
W
chmod +x "$TMP/bin/git"

# git daemon
DPORT=$(free_port)
git daemon --listen=127.0.0.1 --port="$DPORT" --base-path="$SRV" --export-all --reuseaddr \
  --pid-file="$TMP/daemon.pid" "$SRV" 2>"$TMP/daemon.log" &
PIDS+=($!)
# git http-backend behind busybox httpd, basic auth ci:s3cret-token
HPORT=$(free_port)
mkdir -p "$TMP/www/cgi-bin"
cat >"$TMP/www/cgi-bin/git" <<W
#!/bin/sh
export GIT_PROJECT_ROOT="$SRV" GIT_HTTP_EXPORT_ALL=1
exec /usr/lib/git-core/git-http-backend
W
chmod +x "$TMP/www/cgi-bin/git"
echo "/cgi-bin:ci:s3cret-token" >"$TMP/httpd.conf"
busybox httpd -f -p "127.0.0.1:$HPORT" -h "$TMP/www" -c "$TMP/httpd.conf" &
PIDS+=($!)
for i in $(seq 600); do
  git ls-remote "git://127.0.0.1:$DPORT/app.git" >/dev/null 2>&1 && break; sleep 0.1
done

run() {  # run NAME PIPELINE-TEXT [env...]: kiln run in a fresh workspace
  local ws=$TMP/ws-$1; mkdir -p "$ws"; printf '%s\n' "$2" >"$ws/p.yaml"; shift 2
  (cd "$ws" && env PATH="$TMP/bin:$PATH" "$@" "$KILN" run p.yaml --report r.json --log-dir logs \
      --color never >out.txt 2>&1) && echo 0 || echo $?
}

# ---- transports, refs
rc=$(run path "steps:
- {id: co, uses: git-checkout, with: {repo: $SRV/app.git, ref: staging}}")
R=$TMP/ws-path/r.json
check "bare path, branch: succeeds" test "$rc" = 0
check "bare path, branch: COMMIT_SHA" test "$(out "$R" co COMMIT_SHA)" = "$FIRST"
check "bare path, branch: SHORT_SHA" test "$(out "$R" co SHORT_SHA)" = "${FIRST:0:7}"
check "bare path, branch: BRANCH_NAME, REF_NAME" test "$(out "$R" co BRANCH_NAME)/$(out "$R" co REF_NAME)" = staging/staging
check "bare path, branch: REPO_NAME" test "$(out "$R" co REPO_NAME)" = app
check "bare path: checked out into dir named after the repo" test -f "$TMP/ws-path/app/file.txt"
check "shallow by default (1 commit)" test "$(git -C "$TMP/ws-path/app" rev-list --count HEAD)" = 1
check "HEAD is on the branch" test "$(git -C "$TMP/ws-path/app" symbolic-ref --short HEAD)" = staging

rc=$(run file "steps:
- {id: co, uses: git-checkout, with: {repo: file://$SRV/app.git, ref: v1.0, dir: x}}")
R=$TMP/ws-file/r.json
check "file://, tag: succeeds" test "$rc" = 0
check "file://, tag: TAG_NAME, no BRANCH_NAME" test "$(out "$R" co TAG_NAME)/$(out "$R" co BRANCH_NAME)" = "v1.0/"
check "file://, tag: commit of the tag" test "$(out "$R" co COMMIT_SHA)" = "$FIRST"

rc=$(run daemon "steps:
- {id: co, uses: git-checkout, with: {repo: 'git://127.0.0.1:$DPORT/app.git', ref: $FIRST, depth: 0}}")
R=$TMP/ws-daemon/r.json
check "git daemon, exact commit: succeeds" test "$rc" = 0
check "git daemon, exact commit: COMMIT_SHA" test "$(out "$R" co COMMIT_SHA)" = "$FIRST"
check "git daemon, exact commit: no REF_NAME" test "$(out "$R" co REF_NAME)" = ""

rc=$(run daemon2 "steps:
- {id: co, uses: git-checkout, with: {repo: 'git://127.0.0.1:$DPORT/app.git'}}")
check "git daemon, no ref: the default branch" test "$(out "$TMP/ws-daemon2/r.json" co BRANCH_NAME)" = master
check "git daemon, no ref: its head" test "$(out "$TMP/ws-daemon2/r.json" co COMMIT_SHA)" = "$MASTER"

rc=$(run nope "steps:
- {id: co, uses: git-checkout, with: {repo: $SRV/app.git, ref: no-such-branch}}")
check "unknown ref: fails" test "$rc" = 1
check "unknown ref: says so" grep -q "ref 'no-such-branch' is neither a branch nor a tag" "$TMP/ws-nope/out.txt"

# ---- http-backend with a token: from the environment, from a file
HURL="http://127.0.0.1:$HPORT/cgi-bin/git/app.git"
rc=$(run noauth "steps:
- {id: co, uses: git-checkout, with: {repo: '$HURL', ref: master}}")
check "http without a token: fails (401)" test "$rc" = 1
rc=$(run http "steps:
- {id: co, uses: git-checkout, with: {repo: '$HURL', ref: master, username: ci, token-env: APP_TOKEN}}" APP_TOKEN=s3cret-token)
R=$TMP/ws-http/r.json
check "http-backend, token-env: succeeds" test "$rc" = 0
check "http-backend, token-env: COMMIT_SHA" test "$(out "$R" co COMMIT_SHA)" = "$MASTER"
# the token as a Cloud Build secret: availableSecrets + secretEnv on the step
rc=$(run httpsecret "availableSecrets:
  secretManager:
  - {versionName: projects/p/secrets/git-token/versions/latest, env: GIT_TOKEN}
steps:
- {id: co, uses: git-checkout, secretEnv: [GIT_TOKEN], with: {repo: '$HURL', ref: master, username: ci, token-env: GIT_TOKEN}}" KILN_SECRET_GIT_TOKEN=s3cret-token)
check "http-backend, token from secretEnv: succeeds" test "$rc" = 0
check "http-backend, token from secretEnv: COMMIT_SHA" test "$(out "$TMP/ws-httpsecret/r.json" co COMMIT_SHA)" = "$MASTER"
check "the secret token is in no log, output or report" bash -c "! grep -rq s3cret-token $TMP/ws-httpsecret --exclude=p.yaml"
echo s3cret-token >"$TMP/token"
rc=$(run http2 "steps:
- {id: co, uses: git-checkout, with: {repo: '$HURL', ref: staging, username: ci, token-file: $TMP/token}}")
check "http-backend, token-file: succeeds" test "$rc" = 0
rc=$(run http3 "steps:
- {id: co, uses: git-checkout, with: {repo: 'http://ci:s3cret-token@127.0.0.1:$HPORT/cgi-bin/git/app.git', ref: staging}}")
check "http-backend, user:token in the URL: succeeds" test "$rc" = 0
check "the token is on no git command line" bash -c "! grep -q s3cret-token '$TMP/git-argv.log'"
check "git ran over http (the wrapper saw it)" grep -q "remote.origin.url http://127.0.0.1:$HPORT" "$TMP/git-argv.log"
check "the token is in no log, output or report" bash -c "! grep -rq s3cret-token $TMP/ws-http $TMP/ws-http2 $TMP/ws-http3 --exclude=p.yaml"
check "the token is not in the checkout's git config" bash -c "! grep -q s3cret-token $TMP/ws-http3/app/.git/config"
check "no credentials file left behind" bash -c "! ls ${TMPDIR:-/tmp}/kiln-git-auth-* 2>/dev/null | grep -q ."

# ---- submit-sub-build
rc=$(run sub "steps:
- id: sub
  uses: submit-sub-build
  with: {repo: 'git://127.0.0.1:$DPORT/app.git', ref: staging, substitutions: {BRANCH_NAME: staging}}")
R=$TMP/ws-sub/r.json
check "sub-build over git://: succeeds" test "$rc" = 0
check "sub-build: child output tagged with its build id" grep -q '^\[[0-9a-f]\{8\}/hi\] child sees staging' "$TMP/ws-sub/out.txt"
check "sub-build: one line says what was fetched" grep -qE \
  "^\[sub\] fetched branch staging at ${FIRST:0:7} from git://127.0.0.1:$DPORT/app.git into \.kiln/sub-builds/sub \(shallow\)\$" "$TMP/ws-sub/out.txt"
check "sub-build: no git plumbing in the log (ls-remote, rev-parse)" \
  bash -c "! grep -qE 'refs/heads/|^\[sub\] [0-9a-f]{40}\$' '$TMP/ws-sub/out.txt'"

# A relative repo, as the seed's model pipeline names the API's: resolved
# against the workspace's origin, which is not shown either.
mkdir -p "$TMP/ws-rel"; git init -q "$TMP/ws-rel"; git -C "$TMP/ws-rel" remote add origin "$SRV/model.git"
rc=$(run rel "steps:
- {id: sub, uses: submit-sub-build, with: {repo: ../app.git, ref: staging, substitutions: {BRANCH_NAME: staging}}}")
check "relative repo: succeeds" test "$rc" = 0
check "relative repo: one line names the resolved repository" grep -qE \
  "^\[sub\] fetched branch staging at ${FIRST:0:7} from $SRV/app.git into \.kiln/sub-builds/sub \(shallow\)\$" "$TMP/ws-rel/out.txt"
check "relative repo: the fetch is the step's only line before the child starts" test \
  "$(sed -n '/^\[sub\] starting/,/^\[sub\] sub-build .*: /p' "$TMP/ws-rel/out.txt" | grep -c '^\[sub\]')" = 3
check "relative repo: the origin URL is not echoed" bash -c "! grep -qx '\[sub\] $SRV/model.git' '$TMP/ws-rel/out.txt'"
check "sub-build: nested in the report at depth 1" test "$(q "$R" 'r["steps"][0]["builds"][0]["depth"]')" = 1
check "sub-build: build_id output names the child" test \
  "$(out "$R" sub build_id)" = "$(q "$R" 'r["steps"][0]["builds"][0]["id"]')"

mkdir -p "$TMP/ws-fail"; printf 'steps:\n- {id: bad, script: "exit 3"}\n' >"$TMP/ws-fail/child.yaml"
rc=$(run fail "steps:
- {id: sub, uses: submit-sub-build, with: {config: $TMP/ws-fail/child.yaml}}
- {id: after, script: echo never}")
R=$TMP/ws-fail/r.json
check "failing child: the parent build fails" test "$rc" = 1
check "failing child: the parent step failed with the child's reason" grep -q 'sub-build .* ended FAILURE' <<<"$(q "$R" 'r["steps"][0]["reason"]')"
check "failing child: later steps did not run" test "$(q "$R" 'r["steps"][1]["status"]')" = QUEUED

mkdir -p "$TMP/ws-nowait"; printf 'steps:\n- {id: slow, script: "sleep 0.5; echo late child"}\n' >"$TMP/ws-nowait/child.yaml"
rc=$(run nowait "steps:
- {id: sub, uses: submit-sub-build, with: {config: child.yaml, wait: false}}
- {id: next, script: echo parent goes on}")
R=$TMP/ws-nowait/r.json
check "wait: false: succeeds" test "$rc" = 0
check "wait: false: the next step ran before the child ended" bash -c \
  "grep -n 'parent goes on' $TMP/ws-nowait/out.txt | cut -d: -f1 | { read a; b=\$(grep -n 'late child' $TMP/ws-nowait/out.txt | cut -d: -f1); test \$a -lt \$b; }"
check "wait: false: the child still ran to the end" test "$(q "$R" 'r["steps"][0]["builds"][0]["status"]')" = SUCCESS

mkdir -p "$TMP/ws-loop"
rc=$(run loop "steps:
- {id: again, uses: submit-sub-build, with: {config: p.yaml}}")
check "a build that submits itself: fails" test "$rc" = 1
check "a build that submits itself: the depth limit says so" grep -q 'sub-builds nest at most 5 deep (does a pipeline submit itself?)' "$TMP/ws-loop/out.txt"
check "a build that submits itself: 5 levels in the report" test \
  "$(q "$TMP/ws-loop/r.json" 'r["steps"][0]["builds"][0]["steps"][0]["builds"][0]["steps"][0]["builds"][0]["steps"][0]["builds"][0]["steps"][0]["builds"][0]["depth"]')" = 5

mkdir -p "$TMP/ws-strict"; printf 'steps:\n- {id: x, script: "echo hi"}\n' >"$TMP/ws-strict/child.yaml"
rc=$(run strict "steps:
- {id: sub, uses: submit-sub-build, with: {config: child.yaml, substitutions: {_UNUSED: x}}}")
check "child is a manual build: MUST_MATCH rejects an unused substitution" test "$rc" = 1
check "child is a manual build: the error names the key" grep -q '_UNUSED' "$TMP/ws-strict/out.txt"

exit $((FAILS > 0))

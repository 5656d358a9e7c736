#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Deploy steps stuck in a request, cancelled by their timeout or by Ctrl-C
# with a short --kill-grace: what the user sees, that kiln exits and leaves
# nothing behind, and, under ASan (LeakSanitizer on), that nothing the
# plugins kept for the step leaks (a leak fails kiln's exit code, which
# every case checks).
#
# A server stuck in a request (tests/fakes/hang_server.py: it accepts and
# never answers) does not make kiln abandon these steps: their cancel aborts
# the request and ends the step. What cancel cannot stop is a kubeconfig
# exec credential plugin that k8s-deploy runs on a worker thread: then the
# host ends the step after --kill-grace (kiln_step_ops.abandon) and the
# plugin frees the step's state once the credential plugin is through, at
# the start of the step and when it renews a credential during a rollout.
# The abandon paths of docker-build, cloudrun-deploy and k8s-deploy with a
# request in flight are reached through tests/plugins/deaf, which runs the
# real plugin but does not pass cancel on (a plugin that ignores cancel:
# what the host's abandon is for).
source "$(dirname "$0")/lib.sh"
# ASan's exit code for a leak is 1 by default, which a failed build's exit
# code would hide: 23 here, and every case checks for a report too.
export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=1:exitcode=23"
clean_exit() { ! grep -qE "(Address|Leak|UndefinedBehavior)Sanitizer" "$1"; }
export TMPDIR=$TMP/tmpfiles
mkdir -p "$TMPDIR"
leftovers() { find "$TMPDIR" -mindepth 1 -maxdepth 1 | sort; }
# The tests' own files live under $TMP/w, not in $TMPDIR.
mkdir -p w && cd w

FAKE=$KILN_SOURCE_DIR/tests/fakes/hang_server.py
start_fake "$TMP/hang" --docker
HANG=http://127.0.0.1:$PORT
HANG_LOG=$TMP/hang/requests.jsonl
touch "$HANG_LOG"
hang_requests() { wc -l <"$HANG_LOG"; }

# ended PID: the process is gone (or a zombie waiting for `wait`)
ended() { local s; s=$(ps -o stat= -p "$1" 2>/dev/null) || return 0; [[ $s == Z* ]]; }
# interrupt OUT PATTERN ARGS...: kiln ARGS in the background (a session of
# its own: the SIGINT is the only one it sees); once the hang server has
# logged a request matching PATTERN, and $SETTLE seconds more (a lower
# bound: let an upload fill what it can), SIGINT. Prints kiln's exit code, or
# "hung" when it did not exit within 120 s of the SIGINT (then killed).
interrupt() {
    local out=$1 pat=$2; shift 2
    setsid "$KILN" "$@" >"$out" 2>&1 &
    local pid=$! rc=0
    if ! wait_for 120 grep -qE -- "$pat" "$HANG_LOG"; then
        kill -KILL "$pid"; wait "$pid" || true
        echo "no-request"; return
    fi
    sleep "${SETTLE:-0}"
    kill -INT "$pid"
    if ! wait_for 120 ended "$pid"; then
        kill -KILL "$pid"; wait "$pid" || true
        echo hung; return
    fi
    wait "$pid" || rc=$?
    echo "$rc"
}

printf 'apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\ndata: {a: b}\n' >cm.yaml

echo "# k8s-deploy: the API server never answers; Ctrl-C"
cat >k8s-hang.yaml <<Y
steps:
- {id: deploy, uses: k8s-deploy, with: {manifests: [cm.yaml], server: '$HANG'}}
Y
rc=$(interrupt out1 '"path": "/api/v1"' run k8s-hang.yaml --kill-grace 1s --report r1.json)
cat out1
check "exit 130 (exit $rc)" [ "$rc" = 130 ]
check "console: interrupted" has_line out1 "cancelling the build: interrupted (SIGINT)"
check "console: the request it was stuck in" has_line out1 "[deploy] error: k8s-deploy canceled while asking which resources v1 has"
check "console: the plugin ended the step itself" lacks_line out1 "did not complete step"
check "report: CANCELLED" [ "$(status r1.json deploy)" = CANCELLED ]
check "no sanitizer report" clean_exit out1
check "no survivors" no_survivors
check "nothing left in \$TMPDIR" [ -z "$(leftovers)" ]

echo "# cloudrun-deploy: Cloud Run never answers; the step's timeout"
cat >cr-hang.yaml <<Y
steps:
- {id: run, uses: cloudrun-deploy, timeout: 1s,
   with: {service: web, image: 'registry.example/web:1', region: europe-west1, project: p, endpoint: '$HANG'}}
Y
n0=$(hang_requests)
rc=$(run_kiln out2 run cr-hang.yaml --kill-grace 1s --report r2.json)
cat out2
check "exit 1 (exit $rc)" [ "$rc" = 1 ]
check "the request reached the server" [ "$(hang_requests)" -gt "$n0" ]
check "console: timed out" has_line out2 "[run] error: step timed out after 1.00s"
check "console: the request it was stuck in" has_line out2 "[run] error: cloudrun-deploy canceled while reading service web"
check "console: the plugin ended the step itself" lacks_line out2 "did not complete step"
check "report: TIMEOUT, with the plugin's reason" \
    [ "$(status r2.json run)/$(field r2.json run reason)" = "TIMEOUT/cloudrun-deploy canceled while reading service web" ]
check "no sanitizer report" clean_exit out2
check "no survivors" no_survivors
check "nothing left in \$TMPDIR" [ -z "$(leftovers)" ]

echo "# docker-build: the engine answers /version, then never answers the build; Ctrl-C during the upload"
mkdir -p ctx
printf 'FROM scratch\nCOPY big /big\n' >ctx/Dockerfile
# More than the producer's 1 MiB ring and the sockets' buffers: the worker
# thread that tars the context is blocked on a full ring when Ctrl-C comes.
head -c $((8 << 20)) /dev/urandom >ctx/big
cat >db-hang.yaml <<Y
steps:
- {id: img, uses: docker-build, with: {host: 'tcp://127.0.0.1:$PORT', context: ctx, tags: ['registry.example/web:1']}}
Y
rc=$(SETTLE=1 interrupt out3 '"POST", "path": "/v1.41/build' run db-hang.yaml --kill-grace 1s --report r3.json)
cat out3
check "exit 130 (exit $rc)" [ "$rc" = 130 ]
check "console: the engine was reached" has_line out3 "Hanging Engine 0.0-hang, API 1.41"
check "console: the build was dropped" has_line out3 "CANCELLED in"
check "report: the reason" [ "$(field r3.json img reason)" = "build canceled; the connection to the engine was dropped" ]
check "console: the plugin ended the step itself" lacks_line out3 "did not complete step"
check "report: CANCELLED" [ "$(status r3.json img)" = CANCELLED ]
check "no sanitizer report" clean_exit out3
check "no survivors" no_survivors
check "nothing left in \$TMPDIR" [ -z "$(leftovers)" ]

echo "# k8s-deploy: the kubeconfig's credential plugin hangs when the step starts; the step's timeout"
# The plugin answers after 8 s: past the timeout (1 s), --kill-grace (1 s)
# and the host's 2 s, so the host abandons the step while it runs.
mkdir -p kc/bin
cat >kc/bin/cred <<SH
#!/bin/sh
n=\$(( \$(wc -l <$TMP/w/kc/calls 2>/dev/null || echo 0) + 1 ))
echo "call \$n" >>$TMP/w/kc/calls
exp=
case \$1 in
  renew) [ "\$n" = 1 ] && exp=\$(date -u -d "@\$(( \$(date +%s) + 61 ))" +%Y-%m-%dT%H:%M:%SZ) ;;
esac
if [ -z "\$exp" ]; then $SLEEP 8; fi
echo "answered \$n" >>$TMP/w/kc/answers
printf '{"kind":"ExecCredential","apiVersion":"client.authentication.k8s.io/v1","status":{"token":"t-%s"%s}}\n' \
    "\$n" "\${exp:+,\"expirationTimestamp\":\"\$exp\"}"
SH
chmod +x kc/bin/cred
# kubeconfig NAME SERVER ARG
kubeconfig() {
    cat >"kc/$1" <<Y
apiVersion: v1
kind: Config
current-context: c
clusters: [{name: c, cluster: {server: '$2'}}]
contexts: [{name: c, context: {cluster: c, user: u}}]
users: [{name: u, user: {exec: {apiVersion: client.authentication.k8s.io/v1, command: ./bin/cred, args: [$3]}}}]
Y
}
kubeconfig start "$HANG" start
cat >k8s-cred.yaml <<Y
steps:
- {id: deploy, uses: k8s-deploy, timeout: 1s, with: {manifests: [cm.yaml], kubeconfig: '$TMP/w/kc/start'}}
Y
rm -f kc/calls kc/answers
n0=$(hang_requests)
rc=$(run_kiln out4 run k8s-cred.yaml --kill-grace 1s --report r4.json)
cat out4
check "exit 1 (exit $rc)" [ "$rc" = 1 ]
check "console: timed out" has_line out4 "[deploy] error: step timed out after 1.00s"
check "console: kiln ended it for the plugin" \
    has_line out4 "[deploy] error: plugin 'k8s-deploy' did not complete step 'deploy' after cancel"
check "report: TIMEOUT, the plugin did not stop" \
    [ "$(status r4.json deploy)/$(field r4.json deploy reason)" = "TIMEOUT/the plugin did not stop after cancel" ]
check "the credential plugin ran once, and kiln waited for its end" \
    [ "$(cat kc/calls 2>/dev/null)/$(cat kc/answers 2>/dev/null)" = "call 1/answered 1" ]
check "its late credential was not used: no request" [ "$(hang_requests)" = "$n0" ]
check "no sanitizer report" clean_exit out4
check "no survivors" no_survivors
check "nothing left in \$TMPDIR" [ -z "$(leftovers)" ]

echo "# k8s-deploy: the credential plugin hangs when it is asked to renew during a rollout"
# A fake cluster whose rollout takes 60 s; the first credential says it
# ends in 61 s, so kiln renews it before a request a second later, and the
# renewal hangs 8 s: the host abandons the step (timeout 3 s) while a
# request is held for the renewal (one of the rollout's, or on a slow
# machine an earlier one: the same path).
FAKE=$KILN_SOURCE_DIR/tests/fakes/fake_k8s.py
start_fake "$TMP/k8s" --rollout-seconds 60
kubeconfig renew "http://127.0.0.1:$PORT" renew
cat >web.yaml <<'Y'
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: 1
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec: {containers: [{name: web, image: 'registry.example/web:1'}]}
Y
cat >k8s-renew.yaml <<Y
steps:
- {id: deploy, uses: k8s-deploy, timeout: 3s, with: {manifests: [web.yaml], kubeconfig: '$TMP/w/kc/renew'}}
Y
rm -f kc/calls kc/answers
rc=$(run_kiln out5 run k8s-renew.yaml --kill-grace 1s --report r5.json)
cat out5
check "exit 1 (exit $rc)" [ "$rc" = 1 ]
check "console: kiln ended it for the plugin" \
    has_line out5 "[deploy] error: plugin 'k8s-deploy' did not complete step 'deploy' after cancel"
check "report: TIMEOUT" [ "$(status r5.json deploy)" = TIMEOUT ]
check "the renewal was asked for and answered before kiln ended" \
    [ "$(tr '\n' ' ' <kc/calls)/$(tr '\n' ' ' <kc/answers)" = "call 1 call 2 /answered 1 answered 2 " ]
check "no renewed-credentials line (the step was over)" lacks_line out5 "credentials renewed"
check "no sanitizer report" clean_exit out5
check "no survivors" no_survivors
check "nothing left in \$TMPDIR" [ -z "$(leftovers)" ]

echo "# plugins that ignore cancel (tests/plugins/deaf): the host abandons them with a request in flight"
DEAF_DIR=$KILN_BUILD_DIR/test-plugins-deaf
# deaf TARGET OUT ARGS...: kiln ARGS, where `uses: deaf` runs plugin TARGET
deaf() {
    local target=$KILN_PLUGIN_PATH/kiln-step-$1.so out=$2; shift 2
    KILN_TEST_DEAF_TARGET=$target KILN_PLUGIN_PATH=$DEAF_DIR:$KILN_PLUGIN_PATH run_kiln "$out" "$@"
}
# abandoned OUT REPORT ID TARGET: the checks every case makes
abandoned() {
    check "$4: exit 1 (exit $rc)" [ "$rc" = 1 ]
    check "$4: cancel reached the wrapper, not the plugin" has_line "$1" "[$3] warning: deaf: cancel not passed on to $4"
    check "$4: kiln ended it for the plugin" has_line "$1" "[$3] error: plugin 'deaf' did not complete step '$3' after cancel"
    check "$4: report TIMEOUT, the plugin did not stop" \
        [ "$(status "$2" "$3")/$(field "$2" "$3" reason)" = "TIMEOUT/the plugin did not stop after cancel" ]
    check "$4: no sanitizer report (what the plugin kept was freed)" clean_exit "$1"
    check "$4: no survivors" no_survivors
    check "$4: nothing left in \$TMPDIR" [ -z "$(leftovers)" ]
}
sed 's/uses: k8s-deploy/uses: deaf, timeout: 1s/' k8s-hang.yaml >deaf-k8s.yaml
n0=$(hang_requests)
rc=$(deaf k8s-deploy out6 run deaf-k8s.yaml --kill-grace 1s --report r6.json)
cat out6
check "k8s-deploy: its discovery request was in flight" [ "$(hang_requests)" -gt "$n0" ]
abandoned out6 r6.json deploy k8s-deploy
sed 's/uses: cloudrun-deploy/uses: deaf/' cr-hang.yaml >deaf-cr.yaml
rc=$(deaf cloudrun-deploy out7 run deaf-cr.yaml --kill-grace 1s --report r7.json)
cat out7
abandoned out7 r7.json run cloudrun-deploy
sed 's/uses: docker-build/uses: deaf, timeout: 2s/' db-hang.yaml >deaf-db.yaml
n0=$(grep -c '"POST"' "$HANG_LOG" || true)
rc=$(deaf docker-build out8 run deaf-db.yaml --kill-grace 1s --report r8.json)
cat out8
check "docker-build: the build's upload was in flight" [ "$(grep -c '"POST"' "$HANG_LOG")" -gt "$n0" ]
abandoned out8 r8.json img docker-build
# cloudrun-deploy while it polls Cloud Run's operation (a timer or a GET)
FAKE=$KILN_SOURCE_DIR/tests/fakes/fake_cloudrun.py
start_fake "$TMP/cr" --deploy-seconds 60
sed "s|uses: cloudrun-deploy, timeout: 1s|uses: deaf, timeout: 2s|; s|endpoint: '[^']*'|endpoint: 'http://127.0.0.1:$PORT'|" \
    cr-hang.yaml >deaf-cr-poll.yaml
rc=$(deaf cloudrun-deploy out9 run deaf-cr-poll.yaml --kill-grace 1s --report r9.json)
cat out9
check "cloudrun-deploy: it was waiting for the operation" has_line out9 "Creating Revision..."
abandoned out9 r9.json run cloudrun-deploy

finish

#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# `kiln run --executor kubernetes:workspace=pvc,fill=...`: the claim filled
# before the first step (plugins/executor_kubernetes/kube_build.c), on the
# fake API server whose kubelet runs each Pod for real with podman
# (tests/tools/k8s_env.sh), as the real kubectl sees it:
#  - the fake's configMap volumes: binaryData as kubectl makes it, mounted
#    byte-exact, and the 1 MiB limit of a ConfigMap;
#  - fill=git from a git daemon: the build's commit, not the branch tip nor
#    the uncommitted file; a commit the remote lacks fails with git's words;
#  - fill=git with gitSecret= from a real smart-HTTP server with basic auth
#    (busybox httpd + git-http-backend): without it git's auth message,
#    with it the commit's file; no password in the fill Pod (kubectl get
#    pod -o json) nor in kiln's output; a missing Secret fails clearly;
#  - gitSecret= with an ssh remote: a real OpenSSH sshd (in a container of
#    the private podman) and a kubernetes.io/ssh-auth Secret: without it
#    ssh's refusal, with it (known_hosts checked, or said unchecked) the
#    commit's file; no key in the fill Pod; a missing Secret fails clearly;
#  - fill=upload: a git checkout with an uncommitted file and an 8 MB binary
#    file (12 parts; byte-exact by sha256), and a directory that is not a git checkout,
#    reach the step's Pod; the parts are ConfigMaps owned by the build's
#    owner (kubectl get configmap -o json), deleted after; a workspace over
#    uploadLimit fails naming its size before any part or Pod is made.
#
# Needs podman, runc, a static busybox, root, git and kubectl (scripts/
# deps.d/k8s-executor). KILN_SKIP_ENGINE_TESTS=1 skips it.
source "$(dirname "$0")/lib.sh"
source "$KILN_SOURCE_DIR/tests/tools/k8s_env.sh"

echo "# fixture: podman (the fake kubelet's runtime), images, the fake API server"
k8s_env_engine git ldd
[ -x /usr/lib/git-core/git-http-backend ] || cannot_run "no git-http-backend (/usr/lib/git-core)"
"$BUSYBOX" --list | grep -x httpd >/dev/null || cannot_run "busybox has no httpd applet"
# the steps' image also unpacks (fill=upload's default needs sh cat tar gzip)
k8s_env_image sh echo sleep cat ls test mkdir true false env grep tar gzip sha256sum wc
k8s_env_git_image localhost/kiln-k8s-git:2
GIMG=localhost/kiln-k8s-git:2
k8s_env_fake
k8s_env_kubectl
k8s_need_kubectl
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
G() { git -c user.name=t -c user.email=t@x "$@"; }
# catch KIND OUT PYEXPR: kubectl watches KIND (`kubectl get KIND -w -o json`)
# in the background and writes to OUT the first object that satisfies
# PYEXPR (over i). The objects of a fill live for seconds only, too short
# for polling on a loaded machine; a watch sees each one. catch returns once
# the fake has answered kubectl's watch request (its log), so what kiln
# makes next cannot come before it. CATCH is the pid to wait for.
catch() {
    local seen; seen=$(kubectl_watches "$1")
    "${KUBECTL[@]}" get "$1" -w -o json >"$2.stream" 2>"$2.err" &
    local kpid=$!
    FAKE_PIDS+=("$kpid") # stopped by lib.sh's cleanup if the test ends early
    wait_for 60 watch_opened "$1" "$seen" ||
        echo "  kubectl's watch of $1 was not seen by the fake: $(tail -1 "$2.err")"
    (for _ in $(seq 1200); do
        python3 -c 'import json,sys
text, dec, pos = open(sys.argv[1]).read(), json.JSONDecoder(), 0
while True:
    while pos < len(text) and text[pos].isspace():
        pos += 1
    if pos >= len(text):
        sys.exit(1)
    try:
        i, pos = dec.raw_decode(text, pos)
    except ValueError:
        sys.exit(1)   # an object not yet whole
    if eval(sys.argv[2]):
        json.dump(i, open(sys.argv[3], "w"))
        sys.exit(0)' "$2.stream" "$3" "$2" && break
        sleep 0.05
    done
    kill "$kpid" 2>/dev/null) &
    CATCH=$!
}

# ---------------------------------------------------------------------------
echo "# the fake's configMap volumes, checked with kubectl: binaryData byte-exact"
mkdir -p cm && cd cm
head -c 300000 /dev/urandom >blob.bin
SUM=$(sha256sum blob.bin | cut -d' ' -f1)
# kubectl's typed create sends protobuf, which the fake does not speak (415):
# kubectl makes the object (binaryData for the non-UTF-8 file), then sends it
# as JSON.
kcreate() { "${KUBECTL[@]}" create "$@" --dry-run=client -o json | "${KUBECTL[@]}" create --validate=false -f -; }
check "kubectl create configmap --from-file of binary content" \
    kcreate configmap kc --from-file=blob=blob.bin --from-literal=note=hello
"${KUBECTL[@]}" get configmap kc -o json >kc.json 2>&1
check "kubectl get configmap -o json: the bytes are in binaryData, whole" [ "$(python3 -c 'import json,sys,base64,hashlib
j=json.load(open(sys.argv[1])); print(hashlib.sha256(base64.b64decode(j["binaryData"]["blob"])).hexdigest(), j["data"]["note"])' kc.json)" = "$SUM hello" ]
cat >pod.json <<J
{"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "cmread"},
 "spec": {"restartPolicy": "Never",
  "containers": [{"name": "c", "image": "$IMG", "command": ["sh", "-c", "sha256sum /cfg/blob /p/0001; cat /cfg/note"],
                  "volumeMounts": [{"name": "v", "mountPath": "/cfg"}, {"name": "p", "mountPath": "/p"}]}],
  "volumes": [{"name": "v", "configMap": {"name": "kc"}},
              {"name": "p", "projected": {"sources": [{"configMap": {"name": "kc", "items": [{"key": "blob", "path": "0001"}]}}]}}]}}
J
"${KUBECTL[@]}" create --validate=false -f pod.json >/dev/null 2>&1
"${KUBECTL[@]}" wait --for=jsonpath='{.status.phase}'=Succeeded pod/cmread --timeout=120s >/dev/null 2>&1
"${KUBECTL[@]}" logs cmread >cmread.log 2>&1
check "a Pod mounting it (configMap, and projected with items) reads the same bytes" \
    [ "$(grep -c "^$SUM " cmread.log)" = 2 ]
check "... and the text key" has_line cmread.log hello
head -c 1100000 /dev/urandom >big.bin
kcreate configmap big --from-file=blob=big.bin >big.out 2>&1 || true
check "a ConfigMap over 1 MiB is refused as the real server refuses it" \
    has_line big.out 'ConfigMap "big" is invalid: []: Too long: must have at most 1048576 bytes'
sed 's/^/  /' big.out | cut -c1-300
"${KUBECTL[@]}" delete pod cmread >/dev/null 2>&1
"${KUBECTL[@]}" delete configmap kc >/dev/null 2>&1
check "nothing is left" wait_for 60 nothing_left
cd "$TMP"

# ---------------------------------------------------------------------------
echo "# fill=git: a first Pod clones the workspace's origin at its HEAD into the claim"
# The remote is served by git daemon on 127.0.0.1 (the fake kubelet's Pods
# share the host's network, as a real Pod reaches a forge).
mkdir -p fill && cd fill
GPORT=$(free_port)
mkdir -p srv && git init -q --bare srv/src.git && touch srv/src.git/git-daemon-export-ok
git daemon --reuseaddr --base-path="$TMP/fill/srv" --listen=127.0.0.1 --port="$GPORT" "$TMP/fill/srv" \
    >daemon.log 2>&1 &
FAKE_PIDS+=($!)
ORIGIN=git://127.0.0.1:$GPORT/src.git
git init -q ws && cd ws
G commit -q --allow-empty -m root
echo one >a.txt && git add a.txt && G commit -q -m one
ONE=$(git rev-parse HEAD)
echo two >a.txt && G commit -q -am two
git remote add origin "$ORIGIN"
git push -q ../srv/src.git HEAD:refs/heads/main 2>../push.log || cat ../push.log  # git:// is read-only
git -C ../srv/src.git symbolic-ref HEAD refs/heads/main
wait_for 30 git ls-remote "$ORIGIN" >/dev/null 2>&1 || echo "  git daemon does not answer: $(cat ../daemon.log)"
git checkout -q "$ONE"        # the build's commit is not the branch's tip
echo mine >local-only.txt     # not committed: not in the claim
cd ..
sed "s|IMG|$IMG|" >p.yaml <<'Y'
steps:
- id: look
  name: IMG
  entrypoint: sh
  args: ['-c', 'echo a=$$(cat a.txt) local=$$(test -e local-only.txt && echo yes || echo no)']
Y
FX="$EXEC,workspace=pvc,fill=git,fillImage=$GIMG"
rc=$(run_kiln out run p.yaml --executor "$FX" --log-dir logs --workspace ws)
check "the build succeeds (exit 0)" [ "$rc" = 0 ]
[ "$rc" = 0 ] || tail -20 out | sed 's/^/  /'
check "the step sees the build's commit from the claim, not the branch tip" has_line logs/look.log "a=one local=no"
check "kiln says where the claim is filled from" has_line out "filling the workspace claim from $ORIGIN at $ONE"
check "... and what the fill Pod checked out" has_line out "filled /workspace from $ORIGIN at $ONE"
order=$(python3 -c 'import json,sys
for x in open(sys.argv[1]):
    l=json.loads(x)
    if l["method"]=="POST" and l["path"].endswith("/pods"): print(l["body"]["metadata"].get("labels", {}).get("kiln.dev/step"))' "$K/requests.jsonl" | tail -2 | tr '\n' ' ')
check "the fill Pod was created before the step's ($order)" [ "$order" = "kiln-fill look " ]
check "nothing is left" wait_for 60 nothing_left
rc=$(run_kiln out2 run p.yaml --executor "$FX,gitCommit=0123456789abcdef0123456789abcdef01234567" --workspace ws)
check "a commit the remote does not have: the build fails (exit 1)" [ "$rc" = 1 ]
check "... the step says the fill failed, with git's words" \
    grep -q "look.*filling the workspace claim from $ORIGIN at 0123456789abcdef0123456789abcdef01234567 failed (Pod kiln-build-.*-fill, exit code [0-9]*): .*0123456789abcdef" out2
check "nothing is left" wait_for 60 nothing_left
check "the kubelet left no container" wait_for 60 no_containers
cd "$TMP"

# ---------------------------------------------------------------------------
echo "# fill=git, gitSecret=: a private remote over smart HTTP with basic auth"
# busybox httpd runs git-http-backend as a CGI behind basic auth
# (../shared/reference/real-components.md section 4).
mkdir -p auth/www/cgi-bin && cd auth
PW='pw-S3cr3t-x9q'
HPORT=$(free_port)
git init -q --bare srv/priv.git
cat >www/cgi-bin/git <<SH
#!/bin/sh
export GIT_PROJECT_ROOT=$TMP/auth/srv GIT_HTTP_EXPORT_ALL=1
exec /usr/lib/git-core/git-http-backend
SH
chmod +x www/cgi-bin/git
echo "/cgi-bin:ci:$PW" >httpd.conf
"$BUSYBOX" httpd -f -p "127.0.0.1:$HPORT" -h "$TMP/auth/www" -c "$TMP/auth/httpd.conf" >httpd.log 2>&1 &
FAKE_PIDS+=($!)
URL=http://127.0.0.1:$HPORT/cgi-bin/git/priv.git
git init -q ws && cd ws
echo private-content >secret-file.txt && git add secret-file.txt && G commit -q -m private
HEADSHA=$(git rev-parse HEAD)
git remote add origin "$URL"
git push -q ../srv/priv.git HEAD:refs/heads/main
git -C ../srv/priv.git symbolic-ref HEAD refs/heads/main
cd ..
wait_for 30 git ls-remote "http://ci:$PW@127.0.0.1:$HPORT/cgi-bin/git/priv.git" >/dev/null 2>&1 ||
    echo "  httpd does not answer: $(cat httpd.log)"
check "the server refuses a clone without credentials (GIT_TERMINAL_PROMPT=0)" \
    sh -c "! GIT_TERMINAL_PROMPT=0 git ls-remote '$URL' >/dev/null 2>&1"
sed "s|IMG|$IMG|" >p.yaml <<'Y'
steps:
- id: look
  name: IMG
  entrypoint: sh
  args: ['-c', 'echo seen=$$(cat secret-file.txt)']
Y
FX="$EXEC,workspace=pvc,fill=git,fillImage=$GIMG"
rc=$(run_kiln out1 run p.yaml --executor "$FX" --log-dir logs1 --workspace ws)
check "without gitSecret: the build fails (exit 1)" [ "$rc" = 1 ]
check "... the step says the fill failed with git's auth message" \
    grep -q "look.*filling the workspace claim from $URL at $HEADSHA failed (Pod kiln-build-.*-fill, exit code [0-9]*): .*could not read Username" out1
check "nothing is left" wait_for 60 nothing_left
check "kubectl create secret generic --type=kubernetes.io/basic-auth" \
    kcreate secret generic gitcreds --type=kubernetes.io/basic-auth \
    --from-literal=username=ci --from-literal=password="$PW"
catch pods fillpod.json 'i["metadata"]["name"].endswith("-fill")'
rc=$(run_kiln out2 run p.yaml --executor "$FX,gitSecret=gitcreds" --log-dir logs2 --workspace ws)
wait "$CATCH" || true
check "with gitSecret=gitcreds: the build succeeds (exit 0)" [ "$rc" = 0 ]
[ "$rc" = 0 ] || tail -20 out2 | sed 's/^/  /'
check "the step sees the private commit's file" has_line logs2/look.log "seen=private-content"
check "kiln says where the credentials come from" \
    has_line out2 "filling the workspace claim from $URL at $HEADSHA (image $GIMG, credentials from Secret gitcreds)"
B64PW=$(printf %s "$PW" | base64)
check "kubectl get pod -o json of the fill Pod was had" test -s fillpod.json
check "... it holds neither the password nor its base64" sh -c "! grep -qF -e '$PW' -e '$B64PW' fillpod.json"
check "... its env names the Secret's keys (secretKeyRef)" python3 -c 'import json,sys
c=json.load(open(sys.argv[1]))["spec"]["containers"][0]
refs={e["name"]: e["valueFrom"]["secretKeyRef"] for e in c["env"] if "valueFrom" in e}
assert refs["KILN_GIT_USERNAME"] == {"name": "gitcreds", "key": "username"}, refs
assert refs["KILN_GIT_PASSWORD"] == {"name": "gitcreds", "key": "password"}, refs
assert all("@" not in e.get("value", "") for e in c["env"])' fillpod.json
check "no request kiln sent carried the password" python3 -c 'import json,sys
for x in open(sys.argv[1]):
    l=json.loads(x)
    assert not (l["user_agent"] or "").startswith("kiln/") or not any(p in x for p in sys.argv[2:]), l["path"]' \
    "$K/requests.jsonl" "$PW" "$B64PW"
check "nor kiln's output or logs" sh -c "! grep -rqF -e '$PW' out1 out2 logs1 logs2"
check "the user's Secret is left alone" "${KUBECTL[@]}" get secret gitcreds -o name
rc=$(run_kiln out3 run p.yaml --executor "$FX,gitSecret=nope" --workspace ws)
check "a Secret that does not exist: the build fails (exit 1)" [ "$rc" = 1 ]
check "... saying which and what it must hold" \
    grep -q "look.*the fill Pod kiln-build-.*-fill cannot start: CreateContainerConfigError: secret \"nope\" not found (gitSecret=nope must name a Secret of namespace builds with the keys username and password)" out3
"${KUBECTL[@]}" delete secret gitcreds >/dev/null 2>&1
rc=$(run_kiln out4 run p.yaml --executor "$EXEC,workspace=pvc,fill=upload,gitSecret=gitcreds" --workspace ws)
check "gitSecret without fill=git: exit 2, saying so" sh -c "[ $rc = 2 ] && grep -q 'gitSecret is for fill=git' out4"
check "nothing is left" wait_for 60 nothing_left
check "the kubelet left no container" wait_for 60 no_containers
cd "$TMP"

# ---------------------------------------------------------------------------
echo "# fill=git, gitSecret=: a private remote over ssh with a key (kubernetes.io/ssh-auth)"
mkdir -p ssh/srv && cd ssh
SPORT=$(free_port)
if k8s_env_sshd "$SPORT" "$TMP/ssh/srv"; then
    trap 'TMPDIR=$E/tmp podman rm -f -t 0 kiln-k8s-sshd >/dev/null 2>&1; cleanup' EXIT
    git init -q --bare srv/k.git
    git init -q ws && cd ws
    echo by-key >k.txt && git add k.txt && G commit -q -m key
    KSHA=$(git rev-parse HEAD)
    SURL=ssh://root@127.0.0.1:$SPORT/srv/k.git
    git remote add origin "$SURL"
    git push -q ../srv/k.git HEAD:refs/heads/main
    git -C ../srv/k.git symbolic-ref HEAD refs/heads/main
    cd ..
    SSHC="ssh -i $E/ssh/client_key -o IdentitiesOnly=yes -o BatchMode=yes -o UserKnownHostsFile=$E/ssh/known_hosts"
    if wait_for 30 env GIT_SSH_COMMAND="$SSHC" git ls-remote "$SURL" >/dev/null 2>&1; then
        pass "the sshd serves the repository to the key (git ls-remote over ssh)"
    else
        fail "the sshd serves the repository to the key (git ls-remote over ssh)"
        TMPDIR=$E/tmp podman logs kiln-k8s-sshd 2>&1 | sed 's/^/  sshd: /' | tail -5
    fi
    sed "s|IMG|$IMG|" >p.yaml <<'Y'
steps:
- id: look
  name: IMG
  entrypoint: sh
  args: ['-c', 'echo seen=$$(cat k.txt)']
Y
    FX="$EXEC,workspace=pvc,fill=git,fillImage=$GIMG"
    rc=$(run_kiln out1 run p.yaml --executor "$FX" --workspace ws)
    check "without gitSecret: the build fails (exit 1), with ssh's words" \
        sh -c "[ $rc = 1 ] && grep -q 'look.*filling the workspace claim from $SURL at $KSHA failed .*Permission denied\|look.*filling the workspace claim from $SURL at $KSHA failed .*Host key verification failed' out1"
    check "kubectl create secret generic --type=kubernetes.io/ssh-auth (with known_hosts)" \
        kcreate secret generic deploykey --type=kubernetes.io/ssh-auth \
        --from-file=ssh-privatekey="$E/ssh/client_key" --from-file=known_hosts="$E/ssh/known_hosts"
    catch pods fillpod.json 'i["metadata"]["name"].endswith("-fill")'
    rc=$(run_kiln out2 run p.yaml --executor "$FX,gitSecret=deploykey" --log-dir logs2 --workspace ws)
    wait "$CATCH" || true
    check "with gitSecret=deploykey: the build succeeds (exit 0)" [ "$rc" = 0 ]
    [ "$rc" = 0 ] || tail -20 out2 | sed 's/^/  /'
    check "the step sees the commit's file" has_line logs2/look.log "seen=by-key"
    check "the host key was checked (no 'not checked' line)" lacks_line out2 "host key is not checked"
    KEYLINE=$(sed -n 2p "$E/ssh/client_key")
    check "kubectl get pod -o json of the fill Pod: no key, only secretKeyRef" python3 -c 'import json,sys
raw=open(sys.argv[1]).read(); assert sys.argv[2] not in raw
c=json.loads(raw)["spec"]["containers"][0]
refs={e["name"]: e["valueFrom"]["secretKeyRef"] for e in c["env"] if "valueFrom" in e}
assert refs["KILN_GIT_SSH_KEY"] == {"name": "deploykey", "key": "ssh-privatekey"}, refs
assert refs["KILN_GIT_KNOWN_HOSTS"] == {"name": "deploykey", "key": "known_hosts", "optional": True}, refs' \
        fillpod.json "$KEYLINE"
    check "nor kiln's output" lacks_line out2 "$KEYLINE"
    "${KUBECTL[@]}" delete secret deploykey >/dev/null 2>&1
    kcreate secret generic deploykey --type=kubernetes.io/ssh-auth --from-file=ssh-privatekey="$E/ssh/client_key" >/dev/null
    rc=$(run_kiln out3 run p.yaml --executor "$FX,gitSecret=deploykey" --log-dir logs3 --workspace ws)
    check "a Secret without known_hosts: the build succeeds (exit 0)" [ "$rc" = 0 ]
    check "... saying the host key is not checked" has_line out3 "the gitSecret has no known_hosts: the remote host key is not checked"
    check "... and the step sees the file" has_line logs3/look.log "seen=by-key"
    rc=$(run_kiln out4 run p.yaml --executor "$FX,gitSecret=nokey" --workspace ws)
    check "a Secret that does not exist: exit 1, naming the key it must hold" \
        sh -c "[ $rc = 1 ] && grep -q 'secret \"nokey\" not found (gitSecret=nokey must name a Secret of namespace builds with the key ssh-privatekey)' out4"
    "${KUBECTL[@]}" delete secret deploykey >/dev/null 2>&1
    TMPDIR=$E/tmp podman rm -f -t 0 kiln-k8s-sshd >/dev/null 2>&1
    check "nothing is left" wait_for 60 nothing_left
elif [ "${KILN_REQUIRE_SHARED:-0}" = 1 ]; then
    fail "an sshd for the ssh part (scripts/deps.d/k8s-executor: openssh-server)"
else
    echo "skip - no sshd could be had (see above): the ssh part"
fi
cd "$TMP"

# ---------------------------------------------------------------------------
echo "# fill=upload: the workspace as it is on this machine, through ConfigMaps"
mkdir -p up && cd up
git init -q ws && cd ws
echo committed >c.txt && git add c.txt && G commit -q -m c
echo uncommitted >u.txt                      # never committed
mkdir -p "sub dir" && echo spaced >"sub dir/f 1.txt"
head -c 8000000 /dev/urandom >bin.dat        # gzip cannot shrink it: 12 parts (00010 sorts after 00009)
BSUM=$(sha256sum bin.dat | cut -d' ' -f1)
cd ..
mkdir -p plain/deep && echo not-git >plain/deep/n.txt
sed "s|IMG|$IMG|" >p.yaml <<'Y'
steps:
- id: look
  name: IMG
  entrypoint: sh
  args: ['-c', 'echo c=$$(cat c.txt) u=$$(cat u.txt) s=$$(cat "sub dir/f 1.txt") git=$$(test -d .git && echo yes || echo no); sha256sum bin.dat']
Y
FX="$EXEC,workspace=pvc,fill=upload,fillImage=$IMG"
catch configmaps part0.json 'i["metadata"]["name"].endswith("-src-0")'
rc=$(run_kiln out run p.yaml --executor "$FX" --log-dir logs --workspace ws)
wait "$CATCH" || true
check "the build succeeds (exit 0)" [ "$rc" = 0 ]
[ "$rc" = 0 ] || tail -20 out | sed 's/^/  /'
check "the step sees the committed, the uncommitted and the spaced file; not .git (gcloud's default leaves it out)" \
    has_line logs/look.log "c=committed u=uncommitted s=spaced git=no"
check "the binary file arrives byte-exact (sha256)" has_line logs/look.log "$BSUM  bin.dat"
check "kiln says what it uploads" grep -q "uploading the workspace .*/up/ws into the claim: [0-9]* bytes (7.[0-9] MiB) of gzip'd tar in 12 ConfigMaps kiln-build-.*-src-N (image $IMG unpacks it)" out
check "... and the fill Pod what it unpacked" grep -q "filled /workspace from the upload of .*/up/ws ([0-9]* bytes of gzip'd tar in 12 ConfigMaps)" out
check "kubectl get configmap -o json of a part was had" test -s part0.json
check "... its binaryData is a gzip stream's first 700 KiB" python3 -c 'import json,sys,base64
j=json.load(open(sys.argv[1])); b=base64.b64decode(j["binaryData"]["part"])
assert b[:2]==b"\x1f\x8b" and len(b)==700*1024, len(b)' part0.json
check "... labelled with the build and owned by its owner ConfigMap" python3 -c 'import json,sys
m=json.load(open(sys.argv[1]))["metadata"]
o=m["ownerReferences"][0]
assert m["labels"]["app.kubernetes.io/managed-by"]=="kiln" and m["labels"]["kiln.dev/build"]
assert o["kind"]=="ConfigMap" and o["name"]==m["name"][:-len("-src-0")] and o["uid"], m' part0.json
parts() { python3 -c 'import json,sys
c=d=0
for x in open(sys.argv[1]):
    l=json.loads(x)
    if "/configmaps" in l["path"] and "-src-" in (l["path"] + json.dumps(l["body"] or {})):
        if l["method"]=="POST" and l["status"]==201: c+=1
        if l["method"]=="DELETE" and l["status"]==200: d+=1
print(c, d)' "$K/requests.jsonl"; }
check "12 parts were created and 12 deleted ($(parts))" [ "$(parts)" = "12 12" ]
order=$(python3 -c 'import json,sys
for x in open(sys.argv[1]):
    l=json.loads(x)
    if l["method"]=="POST" and l["path"].endswith("/pods"): print(l["body"]["metadata"].get("labels", {}).get("kiln.dev/step"))' "$K/requests.jsonl" | tail -2 | tr '\n' ' ')
check "the fill Pod was created before the step's ($order)" [ "$order" = "kiln-fill look " ]
check "nothing is left" wait_for 60 nothing_left

sed "s|IMG|$IMG|" >q.yaml <<'Y'
steps:
- id: look
  name: IMG
  entrypoint: sh
  args: ['-c', 'echo n=$$(cat deep/n.txt) git=$$(test -e .git && echo yes || echo no)']
Y
rc=$(run_kiln outp run q.yaml --executor "$FX" --log-dir logsp --workspace plain)
check "a directory that is not a git checkout: the build succeeds (exit 0)" [ "$rc" = 0 ]
check "... its files reach the step" has_line logsp/look.log "n=not-git git=no"
check "nothing is left" wait_for 60 nothing_left

rm ws/bin.dat && head -c 2500000 /dev/urandom >ws/big.dat
BEFORE=$(wc -l <"$K/requests.jsonl")
rc=$(run_kiln outb run p.yaml --executor "$FX,uploadLimit=2" --workspace ws)
check "a workspace over uploadLimit=2: the build fails (exit 1)" [ "$rc" = 1 ]
check "... naming its size and the limit" grep -q "look.*fill=upload: the workspace .*/up/ws is [0-9]* bytes ([0-9.]* MiB) as a gzip'd tar, over uploadLimit=2 (2097152 bytes (2.0 MiB)): nothing was uploaded" outb
check "... before any part or Pod was made" python3 -c 'import json,sys
for x in list(open(sys.argv[1]))[int(sys.argv[2]):]:
    l=json.loads(x)
    assert not (l["method"]=="POST" and (l["path"].endswith("/pods") or "-src-" in json.dumps(l["body"] or {}))), l["path"]' \
    "$K/requests.jsonl" "$BEFORE"
check "nothing is left" wait_for 60 nothing_left

echo "# Ctrl-C while the parts are being sent: nothing is left"
head -c 30000000 /dev/urandom >ws/big.dat   # 42 parts
BEFORE=$(wc -l <"$K/requests.jsonl")
rc=0
"$KILN" run p.yaml --executor "$FX,uploadLimit=64" --workspace ws --report rc.json >outc 2>&1 &
KPID=$!
first_part() { tail -n +"$((BEFORE + 1))" "$K/requests.jsonl" | grep '"path": "/api/v1/namespaces/builds/configmaps".*-src-' >/dev/null; }
wait_for 120 first_part || sed 's/^/  /' outc
kill -INT "$KPID"      # as soon as the first part is made: most are still to come
wait "$KPID" || rc=$?
check "kiln ends after Ctrl-C (exit $rc, not 0)" [ "$rc" != 0 ]
check "the step ends CANCELLED" [ "$(status rc.json look)" = CANCELLED ]
made=$(python3 -c 'import json,sys
print(sum(1 for x in list(open(sys.argv[1]))[int(sys.argv[2]):]
          if (l := json.loads(x))["method"]=="POST" and l["path"].endswith("/configmaps")
          and "-src-" in json.dumps(l["body"] or {}) and l["status"]==201))' \
    "$K/requests.jsonl" "$BEFORE")
check "parts had been made ($made)" [ "$made" -ge 1 ]
check "nothing is left (no part, no owner, no claim)" wait_for 60 nothing_left
check "the kubelet left no container" wait_for 60 no_containers
cd "$TMP"

finish

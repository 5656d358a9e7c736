#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# `kiln run --executor kubernetes:workspace=pvc,fill=upload`: what is left
# out of the upload, as `gcloud builds submit` leaves it out
# (plugins/common/gcloudignore.c), seen from the step's Pod on the fake
# cluster whose kubelet runs Pods with podman (tests/tools/k8s_env.sh):
#  - a git checkout with a .gitignore (gitignore's tricky cases) and no
#    .gcloudignore: gcloud's default leaves out .git, .gitignore and what
#    .gitignore lists; the files the step finds are exactly what real git
#    lists (`git ls-files -co --exclude-standard`, less .gitignore), each
#    byte-exact (sha256); kiln says what was left out;
#  - uploadIgnore=none ships everything, .git included;
#  - a .gcloudignore with '!' re-inclusion and #!include: wins over the
#    default; uploadIgnore=FILE names another file;
#  - a workspace over uploadLimit with everything, under it after ignoring,
#    passes; over it after ignoring, the error names the ignore file;
#  - a missing uploadIgnore=FILE, a malformed pattern: exit 2 naming
#    FILE (and LINE:COL) before any Pod or part is made.
#
# Needs podman, runc, a static busybox, root and git (scripts/deps.d/
# k8s-executor). KILN_SKIP_ENGINE_TESTS=1 skips it.
source "$(dirname "$0")/lib.sh"
source "$KILN_SOURCE_DIR/tests/tools/k8s_env.sh"

echo "# fixture: podman (the fake kubelet's runtime), the image, the fake API server"
k8s_env_engine git
# the steps' image also unpacks (fill=upload's default needs sh cat tar gzip)
k8s_env_image sh echo cat ls test mkdir true false env grep tar gzip sha256sum find sort sed
k8s_env_fake
G() { git -c user.name=t -c user.email=t@x "$@"; }
FX="$EXEC,workspace=pvc,fill=upload,fillImage=$IMG"
# The step lists what it finds (F:path) and each file's sha256 (S:sum  path).
sed "s|IMG|$IMG|" >p.yaml <<'Y'
steps:
- id: look
  name: IMG
  entrypoint: sh
  args: ['-c', 'find . \( -type f -o -type l \) | sed "s|^\./|F:|" | sort; find . -type f | sort | while read -r f; do sha256sum "$$f"; done | sed "s|^|S:|; s|  \./|  |"; test -d .git && echo GIT=yes || echo GIT=no']
Y
# found LOG: the paths the step found, sorted
found() { sed -n 's/^.*F:\(.*\)$/\1/p' "$1" | sort; }
# sums LOG: its "sum  path" lines
sums() { sed -n 's/^.*S:\(.*\)$/\1/p' "$1" | sort; }
# local_sums DIR PATH...: the same, here
local_sums() { (cd "$1" && shift && for f in "$@"; do [ -L "$f" ] || sha256sum "$f"; done) | sort; }
# nothing_made_since N: no Pod nor part was created after the fake's Nth request
nothing_made_since() {
    python3 -c 'import json,sys
for x in list(open(sys.argv[1]))[int(sys.argv[2]):]:
    l=json.loads(x)
    if l["method"]=="POST" and (l["path"].endswith("/pods") or "-src-" in json.dumps(l["body"] or {})): sys.exit(1)' \
        "$K/requests.jsonl" "$1"
}

# ---------------------------------------------------------------------------
echo "# a git checkout with a .gitignore: gcloud's default, checked against git"
git init -q kedro && cd kedro
cat >.gitignore <<'I'
# data and caches stay on this machine
data/
*.pyc
!keep.pyc
/build
logs/*
!logs/keep.log
**/tmp/**
doc/*.txt
\#hash
[abc]x.log
trailing   
.venv/
I
mkdir -p src/build build data/raw logs a/tmp/b doc/sub "sub dir" .venv/lib
echo 'print(1)' >src/app.py
echo pyc >src/app.pyc
echo keep >src/keep.pyc
echo o >src/build/out.o           # /build is anchored: this one stays
echo o >build/out.o
head -c 3500000 /dev/urandom >data/raw/big.bin
echo x >data/x.csv
echo a >logs/a.log
echo k >logs/keep.log
echo c >a/tmp/b/c.txt
echo t >tmp.txt
echo r >doc/readme.txt
echo d >doc/sub/deep.txt          # '*' does not cross '/'
echo h >'#hash'
echo t >trailing
echo a >ax.log
echo d >dx.log
echo s >'sub dir/keep me.txt'
echo v >.venv/lib/x.py
ln -s src/app.py link
G add -A && G commit -q -m init
echo u >uncommitted.txt           # not committed, not ignored: uploaded
cd ..
# what git says is not ignored, less .gitignore (gcloud's default leaves it out)
git -C kedro ls-files -z -co --exclude-standard | tr '\0' '\n' | grep -vx .gitignore | sort >want.txt
rc=$(run_kiln out run p.yaml --executor "$FX" --log-dir logs --workspace kedro)
check "the build succeeds (exit 0)" [ "$rc" = 0 ]
[ "$rc" = 0 ] || tail -20 out | sed 's/^/  /'
found logs/look.log >got.txt
check "the step finds exactly what git lists as not ignored ($(wc -l <want.txt) files)" diff want.txt got.txt
diff want.txt got.txt | sed 's/^/  /' | head -20 || true
check "... and git's list is not trivial: data/, *.pyc, .venv/ are not in it" \
    sh -c '! grep -E "^(data/|src/app.pyc|.venv/|build/|logs/a.log|a/tmp/|doc/readme.txt|#hash|trailing|ax.log)" want.txt'
check "... while the re-included and the unanchored ones are" \
    sh -c 'for f in src/keep.pyc logs/keep.log src/build/out.o doc/sub/deep.txt dx.log "sub dir/keep me.txt" uncommitted.txt link tmp.txt; do grep -qxF "$f" want.txt || exit 1; done'
mapfile -t kept <want.txt
local_sums kedro "${kept[@]}" >want_sums.txt
sums logs/look.log >got_sums.txt
check "every kept file arrives byte-exact (sha256)" diff want_sums.txt got_sums.txt
check "... .git is left out" has_line logs/look.log "GIT=no"
check "kiln says which rules applied and what they left out" \
    grep -q "fill=upload: gcloud's default (.git, .gitignore and what .gitignore lists) left out [0-9]* files ([0-9]* bytes (3\.[0-9] MiB)), $(grep -c . want.txt) kept" out
check "nothing is left" wait_for 60 nothing_left

echo "# uploadIgnore=none: everything, .git included"
rc=$(run_kiln outn run p.yaml --executor "$FX,uploadIgnore=none" --log-dir logsn --workspace kedro)
check "the build succeeds (exit 0)" [ "$rc" = 0 ]
check "... the step sees .git" has_line logsn/look.log "GIT=yes"
check "... and the ignored files, byte-exact" has_line logsn/look.log "$(cd kedro && sha256sum data/raw/big.bin)"
check "... and .gitignore" has_line logsn/look.log "F:.gitignore"
check "... kiln says nothing was left out (no line)" sh -c '! grep -q "left out" outn'
check "nothing is left" wait_for 60 nothing_left

echo "# over uploadLimit with everything, under it after ignoring"
rc=$(run_kiln outl run p.yaml --executor "$FX,uploadLimit=2" --log-dir logsl --workspace kedro)
check "uploadLimit=2 with data/ left out: the build succeeds (exit 0)" [ "$rc" = 0 ]
rc=$(run_kiln outl2 run p.yaml --executor "$FX,uploadLimit=2,uploadIgnore=none" --workspace kedro)
check "uploadLimit=2 with uploadIgnore=none: the build fails (exit 1)" [ "$rc" = 1 ]
check "... saying no ignore file applied and how to leave more out" \
    grep -q "over uploadLimit=2 (2097152 bytes (2.0 MiB)): nothing was uploaded (no ignore file applied (uploadIgnore=none): list what the steps do not need in a .gcloudignore, raise uploadLimit, or use fill=git)" outl2
head -c 2500000 /dev/urandom >kedro/weights.bin   # kept: over the limit even so
rc=$(run_kiln outl3 run p.yaml --executor "$FX,uploadLimit=2" --workspace kedro)
check "uploadLimit=2 with a kept 2.5 MB file: the build fails (exit 1)" [ "$rc" = 1 ]
check "... the error names gcloud's default and says how to leave more out" \
    grep -q "nothing was uploaded (gcloud's default (.git, .gitignore and what .gitignore lists) left out [0-9]* files; list more in a .gcloudignore (it replaces the default: start it with .git, .gitignore and #!include:.gitignore), raise uploadLimit, or use fill=git)" outl3
rm kedro/weights.bin
check "nothing is left" wait_for 60 nothing_left
cd "$TMP"

# ---------------------------------------------------------------------------
echo "# a .gcloudignore with '!' and #!include: wins over the default"
mkdir -p gc/scratch && cd gc
git init -q .
printf '*.bin\n!model.bin\nscratch/\n#!include:extra.ignore\n' >.gcloudignore
printf '*.tmp\n' >extra.ignore
printf 'keep.txt\n' >.gitignore      # not read: the .gcloudignore does not include it
head -c 1500000 /dev/urandom >model.bin
echo o >other.bin
echo s >scratch/s.txt
echo t >a.tmp
echo k >keep.txt
cd ..
rc=$(run_kiln outg run p.yaml --executor "$FX" --log-dir logsg --workspace gc)
check "the build succeeds (exit 0)" [ "$rc" = 0 ]
found logsg/look.log | grep -v '^\.git/' >gotg.txt
printf '%s\n' .gcloudignore .gitignore extra.ignore keep.txt model.bin | sort >wantg.txt
check "the step finds the kept files, model.bin re-included ($(tr '\n' ' ' <gotg.txt))" diff wantg.txt gotg.txt
check "... model.bin byte-exact" has_line logsg/look.log "$(cd gc && sha256sum model.bin)"
check "... and .git (this .gcloudignore does not list it)" has_line logsg/look.log "GIT=yes"
check "kiln names the .gcloudignore" grep -q "fill=upload: .gcloudignore left out 3 files (" outg
rc=$(run_kiln outg1 run p.yaml --executor "$FX,uploadLimit=1" --workspace gc)
check "over uploadLimit=1 after ignoring: the build fails (exit 1)" [ "$rc" = 1 ]
check "... the error names the ignore file and says to list more there" \
    grep -q "over uploadLimit=1 (1048576 bytes (1.0 MiB)): nothing was uploaded (.gcloudignore left out 3 files; list more there, raise uploadLimit, or use fill=git)" outg1
printf 'model.bin\n' >gc/ci.ignore
rc=$(run_kiln outf run p.yaml --executor "$FX,uploadIgnore=ci.ignore" --log-dir logsf --workspace gc)
check "uploadIgnore=ci.ignore: the build succeeds (exit 0)" [ "$rc" = 0 ]
check "... that file's rules, not the .gcloudignore's" \
    sh -c 'grep -q "F:other.bin" logsf/look.log && grep -q "F:a.tmp" logsf/look.log && ! grep -q "F:model.bin" logsf/look.log'
check "... named in kiln's line" grep -q "fill=upload: ci.ignore left out 1 file (1500000 bytes (1.4 MiB))" outf
check "nothing is left" wait_for 60 nothing_left

echo "# mistakes: exit 2 before anything is made"
BEFORE=$(wc -l <"$K/requests.jsonl")
rc=$(run_kiln outm run p.yaml --executor "$FX,uploadIgnore=missing.ignore" --workspace gc)
check "a missing uploadIgnore=FILE: exit 2 ($rc)" [ "$rc" = 2 ]
check "... naming it" grep -q "uploadIgnore=missing.ignore: no such file in .*/gc" outm
printf 'ok\n  [oops\n' >gc/bad.ignore
rc=$(run_kiln outb run p.yaml --executor "$FX,uploadIgnore=bad.ignore" --workspace gc)
check "a malformed pattern: exit 2 ($rc)" [ "$rc" = 2 ]
check "... naming FILE:LINE:COL and what was expected" \
    has_line outb "uploadIgnore=bad.ignore:2:3: expected ']' to close this '[' (write '\\[' for a literal '[')"
cp gc/.gcloudignore gc/.gcloudignore.ok
printf '*.bin\n#!include:nope.ignore\n' >gc/.gcloudignore
rc=$(run_kiln outi run p.yaml --executor "$FX" --workspace gc)
check "a .gcloudignore including a missing file: exit 2 ($rc)" [ "$rc" = 2 ]
check "... naming the line" grep -q "\.gcloudignore:2:11: cannot include nope.ignore: no such file" outi
mv gc/.gcloudignore.ok gc/.gcloudignore
rc=$(run_kiln outx run p.yaml --executor "$EXEC,workspace=pvc,fill=git,uploadIgnore=none" --workspace gc)
check "uploadIgnore without fill=upload: exit 2 ($rc)" sh -c "[ $rc = 2 ] && grep -q 'uploadIgnore is for fill=upload' outx"
check "... no Pod and no part was made by any of them" nothing_made_since "$BEFORE"
check "nothing is left" wait_for 60 nothing_left
cd "$TMP"

# ---------------------------------------------------------------------------
echo "# Ctrl-C while the claim is filled: the step waiting for it ends at once, before the fill"
# The step never had a Pod: nothing to stop, no grace to give. Before, it
# ended when --kill-grace ran out (a watch of its Pod with that timeout) or
# when the fill was done and its gate opened, whichever came first. The
# fill image's sh sleeps 60 s first (busybox's sh runs its own applets,
# not /bin/tar: so sh itself is wrapped), so the fill is still running
# when Ctrl-C comes (once the fill Pod is made). Checked by events: the
# step's error, its end before any "filled" line of the fill, no watch
# with the grace's timeout, no Pod of the step. kiln itself still exits
# only once the fill's work in flight is over (the executor is closed when
# the loop has nothing left): not checked, printed.
SLOW=$E/slowroot
k8s_env_root "$SLOW" cat sleep tar gzip
printf '#!/bin/busybox sh\nsleep 60\nexec /bin/busybox sh "$@"\n' >"$SLOW/bin/sh" && chmod +x "$SLOW/bin/sh"
k8s_env_import "$SLOW" localhost/kiln-k8s-slowfill:1
mkdir -p small && echo s >small/s.txt
BEFORE=$(wc -l <"$K/requests.jsonl")
rc=0
"$KILN" run p.yaml --executor "$EXEC,workspace=pvc,fill=upload,fillImage=localhost/kiln-k8s-slowfill:1" \
    --kill-grace 600s --workspace small --report rc.json >outc 2>&1 &
KPID=$!
fill_pod() { tail -n +"$((BEFORE + 1))" "$K/requests.jsonl" | grep '"method": "POST", "path": "/api/v1/namespaces/builds/pods".*-fill' >/dev/null; }
check "the fill Pod is made" wait_for 120 fill_pod
kill -INT "$KPID"
T0=$(date +%s)
gone() { ! kill -0 "$KPID" 2>/dev/null; }
check "kiln ends after Ctrl-C (a hang catch)" wait_for 120 gone
kill -KILL "$KPID" 2>/dev/null || true
wait "$KPID" || rc=$?
echo "  (kiln ended $(($(date +%s) - T0)) s after Ctrl-C: informational, not checked)"
check "kiln's exit is not 0 ($rc)" [ "$rc" != 0 ]
check "the step ends CANCELLED" [ "$(status rc.json look)" = CANCELLED ]
check "... saying its Pod was never made" grep -q "look.*Pod kiln-.*-look-1 was stopped before it was created (it was waiting for the build's claim to be filled" outc
# the line numbers of the step's end and of the fill's (none: 999999)
ended_at=$(grep -n '\[look\] CANCELLED' outc | head -1 | cut -d: -f1)
filled_at=$(grep -n 'filled /workspace' outc | head -1 | cut -d: -f1)
check "... before the fill ended (step's end at line ${ended_at:-none}, the fill's at ${filled_at:-none})" \
    [ "${ended_at:-999999}" -lt "${filled_at:-999999}" ]
check "... no watch of its Pod with the grace's timeout, no Pod of the step" \
    python3 -c 'import json,sys
for x in list(open(sys.argv[1]))[int(sys.argv[2]):]:
    l=json.loads(x)
    q=l.get("query") or {}
    assert not ("-look-1" in (q.get("fieldSelector") or "") and q.get("timeoutSeconds")=="605"), q
    assert not (l["method"]=="POST" and l["path"].endswith("/pods") and "-look-" in json.dumps(l["body"] or {})), l["path"]' \
    "$K/requests.jsonl" "$BEFORE"
grep -E 'look|fill' outc | head -12 | cut -c1-300 | sed 's/^/  /'
check "nothing is left (no part, no owner, no claim)" wait_for 60 nothing_left
check "the kubelet left no container" wait_for 60 no_containers

finish

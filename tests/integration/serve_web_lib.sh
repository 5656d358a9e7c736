# SPDX-License-Identifier: MIT
# Helpers of the kiln serve log and web page tests (sourced after lib.sh
# and serve_lib.sh; not a test itself).
#
# make_log_repo: make_repo's repository and triggers, plus a trigger
#   "logs" running logs.yaml: step "first" prints _N lines to stdout
#   ("out 1" ...), one to stderr, one with ANSI colours, then waits for the
#   file _GATE (when given) and prints "after gate" and _M more lines
#   ("more 1" ..., pausing _PAUSE seconds after every 100 when given);
#   step "second" (after first) prints one line and exits 3 when _FAIL
#   is not 0; step "third" after first too. A trigger "notes" runs
#   notes.yaml: "flaky" fails once and is retried (a kiln note), "child"
#   runs child.yaml (c1, then c2) as a sub-build, then "after".
make_log_repo() {
    make_repo
    cat >"$TMP/work/logs.yaml" <<'YAML'
options: {automapSubstitutions: true}
substitutions: {_GATE: "", _N: "5", _M: "0", _FAIL: "0", _PAUSE: "0"}
steps:
- id: first
  script: |
    i=1; while [ $i -le $_N ]; do echo "out $i"; i=$((i+1)); done
    echo "err line" >&2
    printf '\033[31mred\033[0m plain\n'
    if [ -n "$_GATE" ]; then
      echo "waiting for the gate"
      while [ ! -e "$_GATE" ]; do sleep 0.05; done
    fi
    echo "after gate"
    i=1; while [ $i -le $_M ]; do
      echo "more $i"
      if [ "$_PAUSE" != 0 ] && [ $((i % 100)) = 0 ]; then sleep "$_PAUSE"; fi
      i=$((i+1))
    done
- id: second
  waitFor: [first]
  script: |
    echo "second runs"
    if [ "$_FAIL" != 0 ]; then echo "second fails" >&2; exit 3; fi
- id: third
  waitFor: [first]
  script: echo "third runs"
YAML
    cat >"$TMP/work/notes.yaml" <<'YAML'
steps:
- id: flaky
  retry: {limit: 1, backoff: 0s}
  script: |
    if [ ! -e flaky.once ]; then touch flaky.once; echo "flaky fails once" >&2; exit 1; fi
    echo "flaky ok"
- id: child
  waitFor: [flaky]
  uses: submit-sub-build
  with: {config: child.yaml}
- id: after
  waitFor: [child]
  script: echo "after the child"
YAML
    printf 'steps:\n- id: c1\n  script: echo "child one"\n- id: c2\n  script: echo "child two"\n' \
        >"$TMP/work/child.yaml"
    git -C "$TMP/work" add -A
    git -C "$TMP/work" commit -q -m "logs pipeline"
    git -C "$TMP/work" push -q "$TMP/app.git" master
    cat >>"$TMP/triggers.yaml" <<YAML
- name: logs
  repo: $TMP/app.git
  branch: ^master\$
  filename: logs.yaml
- name: notes
  repo: $TMP/app.git
  branch: ^master\$
  filename: notes.yaml
YAML
}
# log_json ID STEP [QUERY]: GET /api/builds/ID/log?step=STEP&QUERY
log_json() { curl -s "$BASE/api/builds/$1/log?step=$2${3:+&$3}"; }

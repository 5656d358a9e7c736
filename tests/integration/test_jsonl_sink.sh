#!/usr/bin/env bash
# The jsonl sink: one JSON object per record and per event; sequence numbers
# count each step's lines from 1 without gaps; events carry statuses; a
# partial line is marked; secrets are masked here too.
set -uo pipefail
: "${KILN:?}"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"
pass=0 fail=0
check() { local what=$1; shift; if "$@"; then pass=$((pass + 1)); else fail=$((fail + 1)); echo "FAIL - $what"; fi; }

# The step ends its partial line once kiln has passed it on as partial (the
# file sink beside the jsonl sink has it; up to 60 s, a limit that only
# catches a hang), not after a fixed sleep.
cat > p.yaml <<'Y'
availableSecrets:
  secretManager:
  - {versionName: projects/p/secrets/pw/versions/1, env: PW}
steps:
- id: talk
  entrypoint: bash
  secretEnv: [PW]
  args: [-c, 'for i in 1 2 3; do echo "line $i"; done; echo "oops" >&2; printf "no newline"; for ((i = 0; i < 600; i++)); do grep -q "no newline" logs/talk.log && break; sleep 0.1; done; echo; echo "pw=$$PW"']
- id: bad
  args: [sh, -c, 'exit 3']
  allowExitCodes: [3]
Y
KILN_SECRET_PW=hunter2hunter2 "$KILN" run p.yaml --quiet --log-dir logs --sink jsonl:path=out.jsonl >out 2>err; rc=$?
check "exit 0" test $rc = 0
check "every line is a JSON object" python3 -c '
import json,sys
for l in open("out.jsonl"): json.loads(l)'
check "stdout lines with their text" grep -q '"step_id":"talk".*"stream":"stdout".*"text":"line 2"' out.jsonl
check "stderr lines as WARNING" grep -q '"stream":"stderr","severity":"WARNING".*"text":"oops"' out.jsonl
check "a partial line is marked" grep -q '"text":"no newline","partial":true' out.jsonl
check "sequence numbers count each step's records from 1, no gaps" python3 -c '
import json
seqs = {}
for l in open("out.jsonl"):
    j = json.loads(l)
    if "seq" in j and j.get("step_id"):
        seqs.setdefault(j["step_id"], []).append(j["seq"])
assert all(v == list(range(1, len(v) + 1)) for v in seqs.values()), seqs'
check "step_end events with status and exit code" grep -q '"event":"step_end".*"step_id":"bad".*"status":"FAILURE".*"exit_code":3' out.jsonl
check "build_end event" grep -q '"event":"build_end".*"status":"SUCCESS"' out.jsonl
check "the secret is masked" grep -q '"text":"pw=\*\*\*\*\*\*\*\*"' out.jsonl
check "the secret is nowhere" bash -c '! grep -q hunter2 out.jsonl'

# Far more than the sink's high-water mark: kiln must pause the step
# (KILN_EAGAIN, sink_ready) and lose nothing.
cat > big.yaml <<'Y'
steps:
- id: big
  args: [seq, 1, 200000]
Y
"$KILN" run big.yaml --quiet --sink jsonl:path=big.jsonl >out 2>err; rc=$?
check "big: exit 0" test $rc = 0
# A line that seq had only half written when the framer's partial-line
# timer fired (a loaded machine) arrives as a record marked "partial" and
# the record after it: joined, they must give every line once, in order,
# with increasing sequence numbers.
check "big: every line, in order, with increasing seqs" python3 -c '
import json
lines, seqs, held = [], [], ""
for j in map(json.loads, open("big.jsonl", encoding="utf-8")):
    if "seq" not in j:
        continue
    seqs.append(j["seq"])
    if j.get("partial"):
        held += j["text"]
        continue
    lines.append(held + j["text"])
    held = ""
assert held == "", held
assert lines == [str(i) for i in range(1, 200001)], (len(lines), lines[:3], lines[-3:])
assert all(a < b for a, b in zip(seqs, seqs[1:])), "sequence numbers go back"'

echo "# $pass passed, $fail failed"
[ $fail -eq 0 ]

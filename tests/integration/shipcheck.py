# SPDX-License-Identifier: MIT
"""Checks what a fake log receiver (tests/fakes/logrecv.py) kept of one build:
  python3 shipcheck.py RECORDS.json BUILD_ID STEP=PREFIX:COUNT... [--missing STEP=N]
Every step's lines "PREFIX 1" .. "PREFIX COUNT" arrived exactly once (after
deduplication by the sender's key) and in order, seq increasing. A record
marked partial (flushed before its newline: kiln does that to a line that
waited, e.g. while a stalled receiver paused the step) is joined with the
step's next record, as a reader of the logs would. Prints
what is wrong and exits 1, or prints "ok N" (the records of the build)."""
import json
import sys

d = json.load(open(sys.argv[1]))
build = sys.argv[2]
recs = [r for r in d["records"] if r.get("run_id") == build]
bad = []
total = 0


def joined(rs):
    out, cur = [], None
    for r in rs:
        if cur is not None:
            r = dict(r, body=cur["body"] + r["body"], seq=cur["seq"])
            cur = None
        if r.get("partial"):
            cur = r
            continue
        out.append(r)
    if cur is not None:
        out.append(cur)
    return out


for spec in sys.argv[3:]:
    step, rest = spec.split("=", 1)
    prefix, count = rest.rsplit(":", 1)
    count = int(count)
    got = [r for r in joined([r for r in recs if r.get("step") == step])
           if r.get("body", "").startswith(prefix + " ")]
    want = [f"{prefix} {i}" for i in range(1, count + 1)]
    bodies = [r["body"] for r in got]
    total += len(got)
    if bodies != want:
        dup = len(bodies) - len(set(bodies))
        missing = sorted(set(want) - set(bodies), key=lambda s: int(s.split()[-1]))
        bad.append(f"step {step}: {len(bodies)} lines for {count}; {dup} duplicates; "
                   f"missing {missing[:5]}{'...' if len(missing) > 5 else ''}; "
                   f"in order: {bodies == sorted(bodies, key=lambda s: int(s.split()[-1]))}")
    seqs = [r["seq"] for r in got if r.get("seq") is not None]
    if seqs != sorted(seqs) or len(set(seqs)) != len(seqs):
        bad.append(f"step {step}: seq out of order or repeated")
if bad:
    print("\n".join(bad))
    sys.exit(1)
print(f"ok {total}")

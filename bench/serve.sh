#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# kiln serve's benchmark (issue 12), three figures, each beside the raw
# limit measured in the same run (a request kiln serve answers 404 at once:
# h2o's parsing and answer, no work):
#   1. webhook latency: POST /hooks/github of a signed push that no trigger
#      matches (verify, parse, remember the delivery in SQLite, match),
#      answered 2xx, median and p90 over WEBHOOKS sequential requests on a
#      keep-alive connection, while 2 builds run (goal: median < 5 ms);
#   2. GET /api/builds (first page, 50 builds) with HISTORY builds in the
#      history (rows written straight into DATA/kiln.db), median over 200
#      requests (goal: < 20 ms);
#   3. serve's RSS (VmRSS) every 100 builds over BUILDS builds of a
#      one-step pipeline, run through the API, --max-builds 2 (goal: flat).
# Usage: bench/serve.sh [path/to/kiln]   (WEBHOOKS=2000 HISTORY=10000 BUILDS=1000;
#        ONLY=rss runs the third part alone)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
kiln=${1:-$root/build/runner/kiln}
WEBHOOKS=${WEBHOOKS:-2000}
HISTORY=${HISTORY:-10000}
BUILDS=${BUILDS:-1000}
tmp=$(mktemp -d "${TMPDIR:-/tmp}/kiln-bench-serve.XXXXXX")
pid=
trap '[ -n "$pid" ] && kill "$pid" 2>/dev/null; wait 2>/dev/null; rm -rf "$tmp"' EXIT
export GIT_AUTHOR_NAME=kiln GIT_AUTHOR_EMAIL=kiln@example.invalid
export GIT_COMMITTER_NAME=kiln GIT_COMMITTER_EMAIL=kiln@example.invalid

git init -q --bare -b master "$tmp/app.git"
git init -q -b master "$tmp/work"
cat >"$tmp/work/cloudbuild.yaml" <<'YAML'
options: {automapSubstitutions: true}
substitutions: {_SLEEP: "0"}
steps:
- id: step
  script: |
    [ "$_SLEEP" = 0 ] || sleep "$_SLEEP"
YAML
git -C "$tmp/work" add -A && git -C "$tmp/work" commit -q -m first && git -C "$tmp/work" push -q "$tmp/app.git" master
cat >"$tmp/triggers.yaml" <<YAML
triggers:
- name: app
  repo: $tmp/app.git
  branch: ^master\$
YAML
echo t0ken >"$tmp/token"
echo s3cret >"$tmp/secret"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
base=http://127.0.0.1:$port
serve() {
    "$kiln" serve --triggers "$tmp/triggers.yaml" --listen "127.0.0.1:$port" --data "$tmp/data" \
        --token-file "$tmp/token" --webhook-secret-file "$tmp/secret" --max-builds 2 --grace 1s \
        >>"$tmp/serve.log" 2>&1 &
    pid=$!
    for _ in $(seq 600); do curl -sf -o /dev/null "$base/api/builds" && return; sleep 0.1; done
    echo "kiln serve did not start"; cat "$tmp/serve.log"; exit 1
}
stop() { kill -TERM "$pid"; wait "$pid" || true; pid=; }
run() { curl -s -X POST -H 'Authorization: Bearer t0ken' -H 'Content-Type: application/json' \
        --data-binary "$1" "$base/api/triggers/app:run" >/dev/null; }

echo "kiln serve benchmark ($(nproc) cores, $(uname -r)); kiln: $kiln"

if [ "${ONLY:-}" != rss ]; then
# 1. webhooks while 2 builds run
serve
run '{"branch": "master", "substitutions": {"_SLEEP": "600"}}'
run '{"branch": "master", "substitutions": {"_SLEEP": "600"}}'
for _ in $(seq 600); do
    [ "$(curl -s "$base/metrics" | sed -n 's/^kiln_builds{status="WORKING"} //p')" = 2 ] && break
    sleep 0.1
done
python3 - "$base" "$WEBHOOKS" <<'PY'
import hashlib, hmac, http.client, json, statistics, sys, time, urllib.parse
base, n = sys.argv[1], int(sys.argv[2])
u = urllib.parse.urlparse(base)
c = http.client.HTTPConnection(u.hostname, u.port)
def timed(method, path, body=None, headers={}):
    t = time.perf_counter()
    c.request(method, path, body=body, headers=headers)
    r = c.getresponse(); r.read()
    return time.perf_counter() - t, r.status
raw, hook = [], []
for i in range(n):
    d, st = timed("GET", "/nothing-here")
    assert st == 404, st
    raw.append(d)
    body = json.dumps({"ref": "refs/heads/no-trigger-watches-this", "before": "0" * 40, "after": "a" * 40,
                       "repository": {"clone_url": "/srv/other.git"},
                       "commits": [{"id": "a" * 40, "added": [f"f{i}.c"], "modified": [], "removed": []}]}).encode()
    sig = "sha256=" + hmac.new(b"s3cret", body, hashlib.sha256).hexdigest()
    d, st = timed("POST", "/hooks/github", body, {"X-GitHub-Event": "push", "X-GitHub-Delivery": f"bench-{i}",
                                                  "X-Hub-Signature-256": sig, "Content-Type": "application/json"})
    assert st == 200, st
    hook.append(d)
q = lambda v, p: sorted(v)[int(p * (len(v) - 1))] * 1000
print(f"webhook (2 builds running): median {q(hook,.5):.2f} ms, p90 {q(hook,.9):.2f} ms over {n}; "
      f"raw 404: median {q(raw,.5):.2f} ms, p90 {q(raw,.9):.2f} ms; ratio {q(hook,.5)/q(raw,.5):.1f}x")
PY
stop

# 2. GET /api/builds with HISTORY builds in the history
python3 - "$tmp/data/kiln.db" "$HISTORY" <<'PY'
import json, sqlite3, sys, time, uuid
db = sqlite3.connect(sys.argv[1]); n = int(sys.argv[2])
now = int(time.time() * 1e6)
report = json.dumps({"status": "SUCCESS", "steps": [{"key": f"s{k}", "status": "SUCCESS", "exit_code": 0,
                     "log": f"/data/builds/x/logs/s{k}.log"} for k in range(5)]})
rows = [(str(uuid.uuid4()), "app", "bench", "/srv/app.git", "refs/heads/master", "master", None, "a" * 40, "[]",
         "SUCCESS", None, now - (n - i) * 1000000, now - (n - i) * 1000000, now - (n - i) * 1000000 + 5000, report)
        for i in range(n)]
db.executemany("INSERT INTO builds (id, trigger, source, repo, ref, branch, tag, commit_sha, substitutions, status, "
               "status_detail, create_us, start_us, finish_us, report) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)", rows)
db.commit()
PY
serve
python3 - "$base" "$HISTORY" <<'PY'
import http.client, json, sys, time, urllib.parse
u = urllib.parse.urlparse(sys.argv[1])
c = http.client.HTTPConnection(u.hostname, u.port)
def timed(path):
    t = time.perf_counter(); c.request("GET", path); r = c.getresponse(); b = r.read()
    return time.perf_counter() - t, r.status, b
total = 0
cursor = None
while True:  # count what is there, once
    _, st, b = timed("/api/builds?pageSize=1000" + (f"&cursor={cursor}" if cursor else ""))
    j = json.loads(b); total += len(j["builds"]); cursor = j.get("nextCursor")
    if not cursor: break
lst, raw = [], []
for _ in range(200):
    d, st, b = timed("/api/builds"); assert st == 200; lst.append(d)
    d, st, _ = timed("/nothing-here"); raw.append(d)
q = lambda v, p: sorted(v)[int(p * (len(v) - 1))] * 1000
page = len(json.loads(b)["builds"])
print(f"GET /api/builds, first page ({page} builds) of {total} in the history: "
      f"median {q(lst,.5):.2f} ms, p90 {q(lst,.9):.2f} ms; raw 404: median {q(raw,.5):.2f} ms; "
      f"ratio {q(lst,.5)/q(raw,.5):.1f}x")
PY
stop

fi

# 3. RSS over BUILDS builds
rm -rf "$tmp/data"
serve
python3 - "$base" "$BUILDS" "$pid" <<'PY'
import http.client, json, sys, time, urllib.parse
base, n, pid = sys.argv[1], int(sys.argv[2]), sys.argv[3]
u = urllib.parse.urlparse(base)
c = http.client.HTTPConnection(u.hostname, u.port)
def req(method, path, body=None):
    h = {"Authorization": "Bearer t0ken", "Content-Type": "application/json"}
    c.request(method, path, body=body, headers=h); r = c.getresponse(); return r.status, json.loads(r.read())
def rss():
    for l in open(f"/proc/{pid}/status"):
        if l.startswith("VmRSS:"): return int(l.split()[1])
def sqlite_kib():
    c.request("GET", "/metrics"); r = c.getresponse(); t = r.read().decode()
    return next(int(l.split()[-1]) for l in t.splitlines() if l.startswith("kiln_sqlite_memory_bytes")) // 1024
def finished():
    c.request("GET", "/metrics"); r = c.getresponse(); t = r.read().decode()
    return sum(int(l.split()[-1]) for l in t.splitlines()
               if l.startswith("kiln_builds{") and ("SUCCESS" in l or "FAILURE" in l or "CANCELLED" in l
                                                     or "INTERNAL_ERROR" in l or "TIMEOUT" in l))
samples, start = [], time.time()
done = 0
for k in range(0, n, 100):
    for _ in range(min(100, n - k)):
        st, _ = req("POST", "/api/triggers/app:run", json.dumps({"branch": "master"}))
        assert st == 201, st
    while finished() < k + min(100, n - k):
        time.sleep(0.2)
    samples.append((k + min(100, n - k), rss(), sqlite_kib()))
print("RSS (KiB) after N builds: " + ", ".join(f"{b}: {r}" for b, r, _ in samples))
print("RSS less SQLite's heap (KiB): " + ", ".join(f"{b}: {r - q}" for b, r, q in samples))
print(f"{n} builds in {time.time() - start:.0f} s; growth from build 100 to {n}: RSS "
      f"{samples[-1][1] - samples[0][1]} KiB, SQLite's heap {samples[-1][2] - samples[0][2]} KiB")
PY
stop

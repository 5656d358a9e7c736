#!/usr/bin/env bash
# Every JSON kiln writes is UTF-8 whatever bytes a step prints or a user
# passes: ill-formed sequences read as U+FFFD (one per maximal subpart, as
# Unicode recommends), control characters are escaped, valid text is kept.
# Checked with Python's strict decoder on the jsonl sink's file, --report,
# a dry run's plan file (substitutions in a deploying step's options) and
# `kiln plugins --json` (a plugin directory whose name is not UTF-8).
source "$(dirname "$0")/lib.sh"

# One line per case; the expected decoded texts are in expect.py below.
cat > emit.sh <<'SH'
printf '\xff\xfe\n'                              # a UTF-16 byte order mark
printf 'a\x80b\xbf\n'                             # lone continuation bytes
printf 'x\xe6\x97y\n'                             # a truncated 3-byte sequence
printf '\xc0\xaf/\n'                              # an overlong '/'
printf '\xed\xa0\x80!\n'                          # a surrogate (U+D800)
printf '\xf4\x90\x80\x80>\n'                      # above U+10FFFF
printf 'caf\xc3\xa9 \xe6\x97\xa5\xe6\x9c\xac \xf0\x9f\x98\x80\n'   # kept as is
printf 'nul\0here\x01\x1f\ttab\x7f\n'             # NUL and control characters
printf '\x1b[1;31mred\x1b[0m "q" back\\slash\n'    # an ESC sequence, quotes
printf '%s\n' "$BAD"                              # a substitution, through env
printf 'err \xff\n' >&2
printf 'bad=v\xff\xc3\n' >> "$KILN_OUTPUT"
SH
cat > p.yaml <<'Y'
steps:
- id: emit
  args: [bash, emit.sh]
  env: ['BAD=$_BAD']
Y
cat > expect.py <<'PY'
R = "\ufffd"
STDOUT = [R + R, "a" + R + "b" + R, "x" + R + "y", R + R + "/", R + R + R + "!",
          R + R + R + R + ">", "caf\u00e9 \u65e5\u672c \U0001F600",
          "nul\x00here\x01\x1f\ttab\x7f", "\x1b[1;31mred\x1b[0m \"q\" back\\slash"]
BAD = "a" + R * 4 + "z"   # _BAD below: a FF FE C0 AF z
STDOUT.append(BAD)
PY
# strict_lines FILE: every line is a JSON object in UTF-8
strict_lines() {
    python3 -c '
import json, sys
for n, raw in enumerate(open(sys.argv[1], "rb"), 1):
    try:
        json.loads(raw.decode("utf-8"))
    except Exception as e:
        sys.exit("%s:%d: %s: %r" % (sys.argv[1], n, e, raw[:200]))' "$1"
}
strict_doc() { python3 -c 'import json,sys; json.loads(open(sys.argv[1], "rb").read().decode("utf-8"))' "$1"; }

bad=$'a\xff\xfe\xc0\xafz'
rc=0
"$KILN" run p.yaml --quiet --sink jsonl:path=out.jsonl --report r.json --substitutions "_BAD=$bad" \
    >out 2>err || rc=$?
check "the step's run: exit 0" test "$rc" = 0
check "jsonl: every line decodes as UTF-8 JSON" strict_lines out.jsonl
check "jsonl: each stdout line decodes to its text, ill-formed bytes as U+FFFD" python3 -c '
import json
exec(open("expect.py").read())
got = [j["text"] for j in map(json.loads, open("out.jsonl", encoding="utf-8"))
       if j.get("step_id") == "emit" and j.get("stream") == "stdout"]
assert got == STDOUT, got'
check "jsonl: stderr too" python3 -c '
import json
got = [j["text"] for j in map(json.loads, open("out.jsonl", encoding="utf-8")) if j.get("stream") == "stderr"]
assert got == ["err \ufffd"], got'
check "jsonl: control characters are escaped, never raw" python3 -c '
raw = open("out.jsonl", "rb").read()
assert not any(b < 0x20 and b != 0x0a for b in raw)
assert b"nul\\u0000here\\u0001\\u001f\\ttab\\u007f" in raw, raw'
check "report: UTF-8 JSON" strict_doc r.json
check "report: an output with ill-formed bytes" python3 -c '
import json
r = json.load(open("r.json", encoding="utf-8"))
assert r["steps"][0]["outputs"]["bad"] == "v\ufffd\ufffd", r["steps"][0]["outputs"]'
check "report: a substitution with ill-formed bytes" python3 -c '
import json
exec(open("expect.py").read())
r = json.load(open("r.json", encoding="utf-8"))
assert r["substitutions"]["_BAD"] == BAD, r["substitutions"]'

# A dry run: the bytes reach a deploying plugin's options and its request.
cat > d.yaml <<'Y'
steps:
- id: deploy
  uses: cloudrun-deploy
  with:
    service: api
    image: gcr.io/p/api:1
    region: europe-west1
    endpoint: 'http://127.0.0.1:9'
    env-vars: {BAD: $_BAD}
Y
rc=0
"$KILN" run --dry-run d.yaml --plan-dir plans --report r2.json --sink jsonl:path=d.jsonl \
    --substitutions "_BAD=$bad" >out2 2>err2 || rc=$?
check "dry run: exit 0" test "$rc" = 0
check "dry run: one plan file" test "$(ls plans/plan-*.jsonl | wc -l)" = 1
check "plan file: every line decodes as UTF-8 JSON" strict_lines "$(ls plans/plan-*.jsonl)"
check "plan file: options and the planned request carry U+FFFD" python3 -c '
import glob, json
exec(open("expect.py").read())
e = {j["step"]: j for f in glob.glob("plans/plan-*.jsonl") for j in map(json.loads, open(f, encoding="utf-8"))}
assert e["deploy"]["options"]["env-vars"] == {"BAD": BAD}, e["deploy"]["options"]
env = e["deploy"]["requests"][0]["body"]["template"]["containers"][0]["env"]
assert env == [{"name": "BAD", "value": BAD}], env'
check "dry run: report is UTF-8 JSON, its plan entries too" python3 -c '
import json
exec(open("expect.py").read())
r = json.loads(open("r2.json", "rb").read().decode("utf-8"))
assert r["steps"][0]["plan"][0]["options"]["env-vars"] == {"BAD": BAD}, r["steps"][0]'
check "dry run: jsonl (the \"would deploy with\" lines)" strict_lines d.jsonl

# A plugin directory whose name is not UTF-8.
pdir=$TMP/plug$'\xff\xc3'
mkdir "$pdir"
cp "$KILN_PLUGIN_PATH/kiln-sink-jsonl.so" "$pdir/"
rc=0
"$KILN" plugins --json --plugin-path "$pdir" > plugins.json 2>perr || rc=$?
check "plugins --json: exit 0" test "$rc" = 0
check "plugins --json: UTF-8 JSON with the path's bytes as U+FFFD" python3 -c '
import json, sys
l = json.loads(open("plugins.json", "rb").read().decode("utf-8"))
paths = [p["path"] for p in l if p["name"] == "jsonl"]
assert any("/plug\ufffd\ufffd/" in p for p in paths), paths'
rc=0
"$KILN" plugins jsonl --json --plugin-path "$pdir" > one.json 2>perr || rc=$?
check "plugins NAME --json: UTF-8 JSON" python3 -c '
import json
j = json.loads(open("one.json", "rb").read().decode("utf-8"))
assert "/plug\ufffd\ufffd/" in j["path"], j["path"]'

finish

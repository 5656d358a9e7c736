#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# `kiln graph` in its three formats on a diamond, and `kiln plugins`.
source "$(dirname "$0")/lib.sh"

cat >diamond.yaml <<'EOF2'
steps:
- id: fetch
  script: echo fetch
- id: test
  waitFor: [fetch]
  script: echo test
- id: lint
  waitFor: [fetch]
  name: ubuntu
  args: [echo, lint]
- id: package
  waitFor: [test, lint]
  script: echo package
finally:
- id: summary
  script: echo done
EOF2

rc=$(run_kiln g.txt graph diamond.yaml)
check "graph text: exit 0" test "$rc" = 0
cat >want.txt <<'EOF2'
#0 fetch (exec) <- start
#1 test (exec) <- fetch
#2 lint (exec) <- fetch
#3 package (exec) <- test, lint
finally #0 summary (exec)
EOF2
check "graph text: exactly the diamond" cmp -s want.txt g.txt

rc=$(run_kiln g.txt graph diamond.yaml --format dot)
check "graph dot: exit 0" test "$rc" = 0
check "graph dot: a digraph" grep -qx 'digraph pipeline {' g.txt
check "graph dot: node label" has_line g.txt 's3 [label="package\n(exec)"];'
check "graph dot: edges into package" test "$(grep -cE '^  s[12] -> s3;$' g.txt)" = 2
check "graph dot: edges out of fetch" test "$(grep -cE '^  s0 -> s[12];$' g.txt)" = 2
check "graph dot: 4 edges in all" test "$(grep -c -- '->' g.txt)" = 4
check "graph dot: the finally step" has_line g.txt 'f0 [label="finally: summary", shape=box];'
check "graph dot: closed" test "$(tail -n1 g.txt)" = "}"
if command -v dot >/dev/null; then
    check "graph dot: dot accepts it" dot -Tsvg g.txt -o g.svg
fi

rc=$(run_kiln g.txt graph diamond.yaml --format mermaid)
check "graph mermaid: exit 0" test "$rc" = 0
check "graph mermaid: header" test "$(head -n1 g.txt)" = "graph LR"
check "graph mermaid: node" has_line g.txt 's0["fetch (exec)"]'
check "graph mermaid: 4 edges" test "$(grep -c -- '-->' g.txt)" = 4
check "graph mermaid: test and lint into package" test "$(grep -cE '^  s[12] --> s3$' g.txt)" = 2

rc=$(run_kiln g.txt graph diamond.yaml --format svg)
check "graph --format svg: exit 2" test "$rc" = 2
check "graph --format svg: says what is accepted" has_line g.txt "--format: expected text, dot or mermaid, got 'svg'"
printf 'steps:\n- id: a\n  waitFor: [nope]\n  script: echo\n' >broken.yaml
rc=$(run_kiln g.txt graph broken.yaml)
check "graph of an invalid file: exit 2" test "$rc" = 2
check "graph of an invalid file: the error" has_line g.txt 'depends on "nope", which has not been defined'

echo "# kiln plugins"
rc=$(run_kiln p.txt plugins)
check "plugins: exit 0" test "$rc" = 0
check "plugins: header" grep -qE '^NAME +KIND +VERSION +SUMMARY' p.txt
check "plugins: exec" grep -qE '^exec +step +[0-9.]+ +Run a program' p.txt
check "plugins: console" grep -qE '^console +sink ' p.txt
check "plugins: file" grep -qE '^file +sink ' p.txt
rc=$(run_kiln p.txt plugins exec)
check "plugins exec: exit 0" test "$rc" = 0
check "plugins exec: title" grep -qE '^exec [0-9.]+ \(step plugin\)$' p.txt
check "plugins exec: lists script" grep -qE '^  script +string' p.txt
check "plugins exec: lists args" grep -qE '^  args +list of strings' p.txt
check "plugins exec: no trailing spaces" test "$(grep -c ' $' p.txt)" = 0
rc=$(run_kiln p.txt plugins console)
check "plugins console (a sink): its choices" has_line p.txt "one of: kiln cloudbuild"
rc=$(run_kiln pj.txt plugins exec --json)
check "plugins exec --json: exit 0" test "$rc" = 0
check "plugins exec --json: name and kind" test "$(jget pj.txt 'j["name"]+"/"+j["kind"]')" = exec/step
check "plugins exec --json: option names" test "$(jget pj.txt '",".join(o["name"] for o in j["options"])')" = "image,entrypoint,args,script"
check "plugins exec --json: option types" test "$(jget pj.txt 'j["options"][2]["type"]')" = "list of strings"
rc=$(run_kiln pj.txt plugins --json)
check "plugins --json: an array with exec, console, file" test "$(jget pj.txt '",".join(sorted(p["name"] for p in j if p["name"] in ("exec","console","file")))')" = "console,exec,file"
rc=$(run_kiln p.txt plugins nope)
check "plugins nope: exit 2" test "$rc" = 2
check "plugins nope: neither kind found" has_line p.txt "no plugin named 'nope' (looked for kiln-step-nope.so, kiln-sink-nope.so and kiln-executor-nope.so in"

finish

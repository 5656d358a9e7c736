#!/usr/bin/env bash
# The shipping core through the otlp and cloud-logging sinks: LINES lines
# (default 1,000,000, 64 bytes each) printed by one step and shipped to a
# receiver on 127.0.0.1. All in the same run:
#   - no remote sink (`--quiet`): the step's output through kiln alone;
#   - otlp -> nginx: a real server that reads every body and answers 200
#     (proxy_pass to an internal `return 200`; nginx is not the limit);
#   - otlp -> tests/fakes/fake_otlp.py --count-only (Python; it counts the
#     records, so every line is checked to have arrived);
#   - cloud-logging -> nginx (the same server, /v2/entries:write);
#   - the raw HTTP limit: one curl process posting kiln's own batch bodies
#     (captured by nginx from a small run) over one kept-alive connection,
#     as many times as the LINES need; lines/s = records per body x bodies / s.
# For nginx, delivery is checked from its access log: every request 200, and
# the bodies' records counted in one run that keeps them (CHECK_BODIES=1,
# default). Reports lines/s, kiln's peak RSS (/usr/bin/time's maximum
# resident set) and ratios. A last run stalls the python receiver for STALL
# seconds (default 10: its first request hangs) and checks the same count
# arrived.
# Usage: bench/ship.sh [BUILD_DIR]   (env: LINES=1000000 STALL=10 RUNS=3)
# Needs nginx (Debian nginx-light; scripts/deps.d/ship) and curl.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=$root/${1:-build}
kiln=$build/runner/kiln
lines=${LINES:-1000000}
stall=${STALL:-10}
runs=${RUNS:-3}
nginx=$(command -v nginx || echo /usr/sbin/nginx)
[ -x "$nginx" ] || { echo "ship.sh: needs nginx (apt-get install nginx-light)" >&2; exit 2; }
work=$(mktemp -d "${TMPDIR:-/tmp}/kiln-ship.XXXXXX")
cd "$work"
# kiln's default spool (no --log-dir) in the work directory, not the user's.
export XDG_STATE_HOME=$work/state
fake=
cleanup() {
    [ -n "$fake" ] && kill "$fake" 2>/dev/null && wait "$fake" 2>/dev/null
    [ -s ngx/nginx.pid ] && kill "$(cat ngx/nginx.pid)" 2>/dev/null
    [ -n "${KEEP:-}" ] || rm -rf "$work"
}
trap cleanup EXIT
python3 "$root/tests/fakes/fake_otlp.py" --count-only --port 0 --port-file port >fake.out 2>&1 &
fake=$!

# nginx on a free port, everything under $work/ngx.
nport=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
mkdir -p ngx/tmp ngx/cap
# As root, nginx's workers would run as nobody, who cannot write \$work.
user=; [ "$(id -u)" = 0 ] && user="user root;"
# A location that reads the whole body, then answers 200 '{}': the echo
# module's echo_read_request_body (Debian libnginx-mod-http-echo), else a
# proxy_pass to an internal 'return 200' (slower: nginx copies every body to
# itself once more).
echo_so=/usr/lib/nginx/modules/ngx_http_echo_module.so
if [ -f "$echo_so" ]; then
    load="load_module $echo_so;"
    take="echo_read_request_body; default_type application/json; echo '{}';"
    ngx_how="nginx, echo_read_request_body"
else
    load=
    take="proxy_pass http://127.0.0.1:$nport/__200;"
    ngx_how="nginx, proxy_pass to return 200"
fi
cat >ngx/nginx.conf <<EOF
$load
$user
worker_processes 1;
pid $work/ngx/nginx.pid;
error_log $work/ngx/error.log;
events { worker_connections 256; }
http {
  client_body_temp_path $work/ngx/tmp/body;
  proxy_temp_path $work/ngx/tmp/proxy;
  fastcgi_temp_path $work/ngx/tmp/fcgi;
  uwsgi_temp_path $work/ngx/tmp/uwsgi;
  scgi_temp_path $work/ngx/tmp/scgi;
  log_format bench '\$status \$request_length';
  client_max_body_size 64m;
  client_body_buffer_size 16m;
  keepalive_requests 1000000;
  server {
    listen 127.0.0.1:$nport;
    location = /v1/logs { access_log $work/ngx/access.log bench; $take }
    location = /v2/entries:write { access_log $work/ngx/access.log bench; $take }
    # Keeps every body in a file (the delivery check, and the raw limit's bodies).
    location /keep/ { client_body_in_file_only on; client_body_temp_path $work/ngx/cap;
                      access_log $work/ngx/keep.log bench; $take }
    location /__200 { access_log off; default_type application/json; return 200 '{}'; }
  }
}
EOF
"$nginx" -p "$work/ngx" -c "$work/ngx/nginx.conf" -e "$work/ngx/error.log"
for _ in $(seq 1 200); do [ -s port ] && [ -s ngx/nginx.pid ] && break; sleep 0.05; done
port=$(cat port)
url=http://127.0.0.1:$port/v1/logs
nurl=http://127.0.0.1:$nport
# Lines the python receiver got: records, less the first pieces of lines kiln
# passed on in two (a line that waited while the step was paused).
raw() { curl -sf "http://127.0.0.1:$port/_records" | python3 -c 'import json,sys; d=json.load(sys.stdin); print(d["raw"] - d["partials"])'; }
# nginx: every logged request since the last call answered 200?
ngx_ok() {
    local n; n=$(wc -l <ngx/access.log)
    if awk '$1 != 200 {bad=1} END {exit bad}' ngx/access.log; then :; else
        echo "ship.sh: nginx answered other than 200:" >&2; sort ngx/access.log | uniq -c | head >&2; exit 1; fi
    : >ngx/access.log
    echo "$n"
}

# 64-byte lines, numbered.
printf 'steps:\n- id: gen\n  entrypoint: bash\n  args: [-c, "seq -f \\"kiln ship benchmark line %%.0f xxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\\" 1 %s"]\n' "$lines" >p.yaml
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
# timed NAME ARGS...: wall seconds to NAME.t, peak RSS KiB to NAME.rss
timed() {
    local name=$1; shift
    local t0=$EPOCHREALTIME
    /usr/bin/time -f %M -o rss.tmp "$kiln" run p.yaml --quiet "$@" >run.out 2>&1 || { cat run.out; exit 1; }
    echo "$EPOCHREALTIME - $t0" | bc >>"$name.t"
    cat rss.tmp >>"$name.rss"
    if grep -q 'not delivered\|lost' run.out; then cat run.out >&2; exit 1; fi
}
cl="cloud-logging:project=bench,token=bench"

# Delivery to nginx, checked once: the bodies kept, their records counted.
if [ "${CHECK_BODIES:-1}" = 1 ]; then
    for sink in "otlp:endpoint=$nurl/keep/v1/logs" "$cl,endpoint=$nurl/keep/v2/entries:write"; do
        rm -f ngx/cap/*
        "$kiln" run p.yaml --quiet --sink "$sink" >run.out 2>&1 || { cat run.out; exit 1; }
        awk '$1 != 200 {exit 1}' ngx/keep.log || { echo "ship.sh: nginx answered other than 200" >&2; exit 1; }
        : >ngx/keep.log
        # otlp: one kiln.record.id per record; cloud-logging: one textPayload
        # per entry; less the first pieces of lines passed on in two (a
        # line that waited while the step was paused), as the fake counts.
        key='"kiln.record.id"' part='"kiln.partial"'
        case $sink in cloud-logging*) key='"textPayload"' part='"partial":"true"';; esac
        got=$(python3 -c '
import glob,sys
k,p=sys.argv[1].encode(),sys.argv[2].encode()
print(sum(d.count(k)-d.count(p) for d in (open(f,"rb").read() for f in glob.glob("ngx/cap/*"))))' "$key" "$part")
        [ "$got" = "$lines" ] || { echo "ship.sh: nginx kept $got of $lines records (${sink%%:*})" >&2; exit 1; }
        echo "nginx kept every record of ${sink%%:*}: $got of $lines"
    done
    rm -f ngx/cap/*
fi

# The raw HTTP limit's bodies: a small run's batches as nginx kept them.
rm -f ngx/cap/*
printf 'steps:\n- id: gen\n  entrypoint: bash\n  args: [-c, "seq -f \\"kiln ship benchmark line %%.0f xxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\\" 1 3000"]\n' >small.yaml
rawcfg() { # KIND PATH SINK: K url lines reposting the biggest kept body
    local kind=$1 path=$2 sink=$3 key=$4
    rm -f ngx/cap/*
    "$kiln" run small.yaml --quiet --sink "$sink" >run.out 2>&1 || { cat run.out; exit 1; }
    local body; body=$(ls -S ngx/cap/* | head -1)
    cp "$body" "$kind.body"
    local per; per=$(grep -o "$key" "$kind.body" | wc -l)
    local k=$(( (lines + per - 1) / per ))
    echo "$per" >"$kind.per"; echo "$k" >"$kind.k"
    { echo 'silent'; echo 'header = "Content-Type: application/json"'; echo "data-binary = \"@$work/$kind.body\"";
      for _ in $(seq 1 "$k"); do echo "url = \"$nurl$path\""; echo 'output = "/dev/null"'; done; } >"$kind.curl"
    : >ngx/keep.log
}
rawcfg otlp /v1/logs "otlp:endpoint=$nurl/keep/v1/logs" '"kiln.record.id"'
rawcfg cl /v2/entries:write "$cl,endpoint=$nurl/keep/v2/entries:write" '"textPayload"'
rawtimed() { # KIND: curl posting K bodies
    local t0=$EPOCHREALTIME
    curl -K "$1.curl"
    echo "$EPOCHREALTIME - $t0" | bc >>"raw_$1.t"
}

: >ngx/access.log
for _ in $(seq 1 "$runs"); do
    timed bare
    rawtimed otlp
    [ "$(ngx_ok)" = "$(cat otlp.k)" ]
    timed ngx_otlp --sink "otlp:endpoint=$nurl/v1/logs"
    ngx_ok >/dev/null
    rawtimed cl
    [ "$(ngx_ok)" = "$(cat cl.k)" ]
    timed ngx_cl --sink "$cl,endpoint=$nurl/v2/entries:write"
    ngx_ok >/dev/null
    before=$(raw)
    timed py_otlp --sink "otlp:endpoint=$url"
    got=$(( $(raw) - before ))
    [ "$got" = "$lines" ] || { echo "ship.sh: the python receiver counted $got of $lines records" >&2; exit 1; }
done
rate() { echo "$lines / $1" | bc -l; }
tb=$(median <bare.t)
row() { # LABEL NAME
    local t; t=$(median <"$2.t")
    printf '%-34s %6.2f s %9.0f lines/s  RSS %6d KiB  %5.2fx the time without a remote sink\n' \
        "$1" "$t" "$(rate "$t")" "$(median <"$2.rss")" "$(echo "$t / $tb" | bc -l)"
}
rawrow() { # LABEL KIND
    local t; t=$(median <"raw_$2.t")
    local n=$(( $(cat "$2.per") * $(cat "$2.k") ))
    printf '%-34s %6.2f s %9.0f lines/s  (%d bodies of %d records, %d bytes, one curl)\n' \
        "$1" "$t" "$(echo "$n / $t" | bc -l)" "$(cat "$2.k")" "$(cat "$2.per")" "$(stat -c %s "$2.body")"
}
printf 'lines %d, %d runs (medians); receiver: %s\n' "$lines" "$runs" "$ngx_how"
printf '%-34s %6.2f s %9.0f lines/s  RSS %6d KiB\n' "no remote sink" "$tb" "$(rate "$tb")" "$(median <bare.rss)"
row "otlp -> nginx" ngx_otlp
rawrow "raw: curl -> nginx (otlp bodies)" otlp
row "otlp -> python fake" py_otlp
row "cloud-logging -> nginx" ngx_cl
rawrow "raw: curl -> nginx (cl bodies)" cl
to=$(median <ngx_otlp.t) tc=$(median <ngx_cl.t)
printf 'otlp -> nginx / raw curl: %.2fx the time; cloud-logging -> nginx / raw curl: %.2fx\n' \
    "$(echo "$to / $(median <raw_otlp.t)" | bc -l)" "$(echo "$tc / $(median <raw_cl.t)" | bc -l)"

# The receiver stalls: its first request hangs STALL s (kiln's timeout is
# STALL+5 s, so that request is not cut short); the steps wait meanwhile.
curl -sf -XPOST "http://127.0.0.1:$port/_fault" -d "{\"mode\":\"hang\",\"count\":1,\"seconds\":$stall}" >/dev/null
before=$(raw)
timed stall --sink "otlp:endpoint=$url,timeout=$((stall + 5))s"
got=$(( $(raw) - before ))
printf 'otlp -> python fake stalled %ds: %.2f s, RSS %d KiB, %d of %d lines delivered\n' "$stall" \
    "$(cat stall.t)" "$(cat stall.rss)" "$got" "$lines"
[ "$got" = "$lines" ] || exit 1

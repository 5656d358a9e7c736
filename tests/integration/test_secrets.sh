#!/usr/bin/env bash
# Secrets (availableSecrets + secretEnv) from the three local providers, and
# the masker: no secret value reaches the console, a log file or the report.
set -uo pipefail
: "${KILN:?}"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"
pass=0 fail=0
check() { local what=$1; shift; if "$@"; then pass=$((pass + 1)); else fail=$((fail + 1)); echo "FAIL - $what"; fi; }

cat > p.yaml <<'Y'
availableSecrets:
  secretManager:
  - versionName: projects/$PROJECT_ID/secrets/api-token/versions/latest
    env: TOKEN
steps:
- id: use
  name: bash
  entrypoint: bash
  secretEnv: [TOKEN]
  args: [-c, 'echo "token=$$TOKEN"; printf "half $${TOKEN:0:6}"; sleep 0.3; printf "$${TOKEN:6}\n"; printf "progress $$TOKEN"; sleep 0.3; echo; echo "out=$$TOKEN" >> "$$KILN_OUTPUT"; echo "err $$TOKEN" >&2']
Y

# 1. No provider has it: one clear error naming the secret, nothing runs.
"$KILN" validate p.yaml >out 2>err; rc=$?
check "missing secret: exit 2" test $rc = 2
check "missing secret: FILE:LINE:COL and the name" grep -q 'p.yaml:3:18: error: secret "api-token" (projects/local/secrets/api-token/versions/latest) has no value here' err
check "missing secret: says how to provide it" grep -q 'KILN_SECRET_API_TOKEN' err

# 2. From the environment.
KILN_SECRET_API_TOKEN=tok-s3cr3t-value "$KILN" run p.yaml --log-dir logs --report r.json >out 2>err; rc=$?
check "env provider: exit 0" test $rc = 0
check "env provider: the step saw the value (masked on the console)" grep -q '\[use\] token=\*\*\*\*\*\*\*\*' out
check "no secret on the console" bash -c '! grep -q "s3cr3t" out err'
check "no secret in the log file" bash -c '! grep -q "s3cr3t" logs/use.log'
check "no secret in the report" bash -c '! grep -q "s3cr3t" r.json'
check "stderr lines masked too" grep -q 'err \*\*\*\*\*\*\*\*' logs/use.log
check "a secret split across two writes is masked" grep -q 'half \*\*\*\*\*\*\*\*' logs/use.log
check "a partial line ending in a secret is masked" grep -q 'progress \*\*\*\*\*\*\*\*' logs/use.log

# 3. From a dotenv file.
printf '# local secrets\napi-token="file-s3cr3t"\n' > secrets.env
"$KILN" run p.yaml --secrets-file secrets.env --quiet --report r2.json >out 2>err; rc=$?
check "file provider: exit 0" test $rc = 0
check "file provider: the output file holds the masked value" grep -q '"out":.*"\*\*\*\*\*\*\*\*"' r2.json

# 4. From a command, given the version name.
"$KILN" run p.yaml --secrets-command 'printf cmd-s3cr3t-%s' --quiet --log-dir l3 >out 2>err; rc=$?
check "command provider: exit 0" test $rc = 0
check "command provider: masked" bash -c '! grep -q s3cr3t l3/use.log out err'

# 5. Checks before running.
cat > q.yaml <<'Y'
availableSecrets:
  secretManager:
  - {versionName: projects/p/secrets/a/versions/1, env: A}
  - {versionName: projects/p/secrets/b/versions/1, env: B}
steps:
- id: s
  args: [echo]
  secretEnv: [A, C]
Y
KILN_SECRET_A=aaa KILN_SECRET_B=bbb "$KILN" validate q.yaml >out 2>err; rc=$?
check "undefined secretEnv: exit 2" test $rc = 2
check "undefined secretEnv named" grep -q 'q.yaml:8:18: error: build step #0 - "s": secretEnv "C" is not defined in availableSecrets' err
check "unused secret named" grep -q 'secret environment variable "B" is not used by any build step' err

echo "# $pass passed, $fail failed"
[ $fail -eq 0 ]

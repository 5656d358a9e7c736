#!/usr/bin/env bash
# Installs the Debian packages kiln needs to build and test. Does nothing when
# they are all present. Run as root (or with sudo available).
set -euo pipefail

packages=(
  build-essential cmake ninja-build pkg-config git python3 make
  libuv1-dev libyaml-dev libcurl4-openssl-dev libcjson-dev libcmocka-dev
  clang libclang-rt-14-dev procps
)
# Extra packages for the tests of later plugins are listed in scripts/deps.d/*.
if [ -d "$(dirname "$0")/deps.d" ]; then
  for f in "$(dirname "$0")"/deps.d/*; do
    [ -f "$f" ] || continue
    while read -r p _; do
      case "$p" in ''|'#'*) ;; *) packages+=("$p") ;; esac
    done < "$f"
  done
fi

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# npm: Debian's package only where no npm is there. NodeSource's nodejs
# bundles npm and declares Conflicts: npm, so asking apt for npm there
# would remove nodejs. The browser and npm-client tests need it (CI has it).
command -v npm >/dev/null 2>&1 || missing+=(npm)
[ ${#missing[@]} -eq 0 ] && exit 0

echo "kiln: installing ${missing[*]}" >&2
SUDO=
[ "$(id -u)" -eq 0 ] || SUDO=sudo
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null

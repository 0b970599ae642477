#!/usr/bin/env bash
# Sets up a learner's machine for the course: Vagrant runs it in the VM, and a bare Debian/Ubuntu
# host runs the same script (sudo ./lab/provision.sh, or ./lab/provision.sh in a root shell).
# Idempotent: every step checks first and acts only when something is missing, so a second run
# changes nothing. Non-interactive (tshark's debconf question is answered in scripts/setup.sh).
#   Node: a Node >= 20.19 (and < 23) already on PATH is kept; else the distribution's nodejs if
#   it is new enough; else Node 22 from NodeSource (only where there is no Node at all).
#   Then scripts/setup.sh --check-first: system packages, npm ci, the build, `lab` on PATH.
#   Last: lab doctor, and the first exercise.
set -euo pipefail
REPO=${LAB_REPO:-$(cd "$(dirname "$0")/.." && pwd)}
if [ "$(id -u)" != 0 ]; then
  command -v sudo >/dev/null || { echo "provision: run as root (no sudo here)" >&2; exit 2; }
  # LAB_BIN_DIR (where `lab` is linked; tests point it at a scratch directory) survives sudo too.
  exec sudo LAB_REPO="$REPO" ${LAB_BIN_DIR:+LAB_BIN_DIR="$LAB_BIN_DIR"} bash "$REPO/lab/provision.sh" "$@"
fi
export DEBIAN_FRONTEND=noninteractive
# Where setup.sh links `lab` (sudo's secure_path may not name a LAB_BIN_DIR), for the lab doctor below.
export PATH="${LAB_BIN_DIR:-/usr/local/bin}:$PATH"
say() { echo "provision: $*"; }

node_supported() { # the range package.json's engines allow: 20.19+ or 22
  command -v node >/dev/null && node -e 'const [a,b]=process.versions.node.split(".").map(Number); process.exit((a===20&&b>=19)||a===21||a===22?0:1)'
}
apt_updated=0
apt_update() { [ "$apt_updated" = 1 ] || { apt-get update -qq; apt_updated=1; }; }

if node_supported; then
  say "node $(node --version) is there: kept"
elif command -v node >/dev/null; then
  # Never replace a Node someone installed: say what is needed instead.
  echo "provision: node $(node --version) is too old or too new for ambient-lab (needs >= 20.19, < 23); install one and run again" >&2
  exit 2
else
  apt_update
  cand=$(apt-cache policy nodejs 2>/dev/null | sed -n 's/^ *Candidate: *//p')
  if [ -n "$cand" ] && [ "$cand" != "(none)" ] && dpkg --compare-versions "$cand" ge 20.19 && dpkg --compare-versions "$cand" lt 23; then
    say "installing the distribution's nodejs $cand"
    apt-get install -y -qq --no-install-recommends nodejs npm >/dev/null
  else
    say "the distribution's nodejs (${cand:-none}) is too old: installing Node 22 from NodeSource"
    apt-get install -y -qq --no-install-recommends ca-certificates curl gnupg >/dev/null
    curl -fsSL https://deb.nodesource.com/setup_22.x -o /tmp/nodesource_setup.sh
    bash /tmp/nodesource_setup.sh >/dev/null
    apt-get install -y -qq nodejs >/dev/null
  fi
  node_supported || { echo "provision: node still missing after installing it" >&2; exit 1; }
fi
command -v npm >/dev/null || { apt_update; say "installing npm"; apt-get install -y -qq --no-install-recommends npm >/dev/null; }

# scripts/setup.sh also installs sudo where it is missing (a root shell in a fresh container), so
# the course's `sudo lab ...` commands work there as written.
bash "$REPO/scripts/setup.sh" --check-first

# The learner's answers go to ~/answers (lab check reads them, under sudo too). The learner is
# the Vagrant user, or on a bare host whoever ran this script through sudo.
LAB_LEARNER=${LAB_LEARNER:-${SUDO_USER:-}}
if [ -n "$LAB_LEARNER" ] && [ "$LAB_LEARNER" != root ] && id "$LAB_LEARNER" >/dev/null 2>&1; then
  home=$(getent passwd "$LAB_LEARNER" | cut -d: -f6)
  [ -d "$home/answers" ] || { install -d -o "$LAB_LEARNER" -g "$(id -gn "$LAB_LEARNER")" "$home/answers"; say "made $home/answers"; }
fi

echo
lab doctor
echo
echo "next: lab/01-pods-and-nodes.md (cd $REPO; sudo lab course start 01)"

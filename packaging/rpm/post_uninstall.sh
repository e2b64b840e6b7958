# $1 is 0 on erase, 1 on upgrade.
if [ -d /run/systemd/system ]; then
    systemctl daemon-reload >/dev/null 2>&1 || :
fi
# The package's directories (cargo-generate-rpm does not record directory
# entries, so rpm does not remove them): gone on erase once empty. Edited
# config files stay as .rpmsave, and with them /etc/runner-health-exporter.
if [ "$1" -eq 0 ]; then
    for d in /usr/share/runner-health-exporter/alerts /usr/share/runner-health-exporter/grafana \
             /usr/share/runner-health-exporter /usr/share/doc/runner-health-exporter/runbooks \
             /usr/share/doc/runner-health-exporter /usr/share/licenses/runner-health-exporter \
             /etc/runner-health-exporter; do
        rmdir "$d" 2>/dev/null || :
    done
fi

# The system user must exist before the config file is given its group.
if command -v systemd-sysusers >/dev/null 2>&1; then
    echo 'u runner-health-exporter - "runner-health-exporter daemon" /nonexistent /usr/sbin/nologin' \
        | systemd-sysusers --replace=/usr/lib/sysusers.d/runner-health-exporter.conf - || :
elif ! getent passwd runner-health-exporter >/dev/null; then
    useradd --system --user-group --no-create-home --home-dir /nonexistent \
        --shell /usr/sbin/nologin runner-health-exporter || :
fi

# $1 is 0 on removal, 1 on upgrade.
if [ "$1" -eq 0 ] && [ -d /run/systemd/system ]; then
    systemctl --no-reload disable --now runner-health-exporter.service >/dev/null 2>&1 || :
fi

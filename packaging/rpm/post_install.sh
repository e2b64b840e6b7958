# $1 is 1 on install, 2 on upgrade.
# The config and the token file are the package's %config(noreplace) files:
# rpm lays them down with their owner, group and mode (the group exists:
# pre_install created it) and keeps local edits on upgrade.
if [ -d /run/systemd/system ]; then
    systemctl daemon-reload >/dev/null 2>&1 || :
    if [ "$1" -eq 1 ]; then
        systemctl preset runner-health-exporter.service >/dev/null 2>&1 || :
    else
        systemctl try-restart runner-health-exporter.service >/dev/null 2>&1 || :
    fi
fi

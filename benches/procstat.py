"""What the benchmark scripts read from /proc and from an exposition, and
how they scrape and stop an exporter: one copy for compare.py,
collection.py and runner_collector.py."""

import os
import socket
import subprocess
import urllib.request

TICK = os.sysconf("SC_CLK_TCK")


def free_port():
    """A loopback port nobody listens on (now)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cpu_seconds(pid):
    """utime + stime of a process, in seconds (TICK resolution)."""
    with open(f"/proc/{pid}/stat") as f:
        rest = f.read().rsplit(")", 1)[1].split()
    return (int(rest[11]) + int(rest[12])) / TICK


def rss_kib(pid, field="VmRSS"):
    """A memory field of /proc/PID/status (VmRSS, VmHWM, ...), in KiB."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def value(text, series):
    """The value of one series (name with labels, as exposed) in a text
    exposition, or None."""
    for line in text.splitlines():
        if line.startswith(series + " "):
            return float(line.rsplit(" ", 1)[1])
    return None


def scrape(port, timeout=5):
    """GET /metrics of the exporter on a loopback port, as text."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=timeout) as r:
        return r.read().decode()


def stop(proc):
    """SIGTERM, then SIGKILL if the process has not exited within 5 s."""
    proc.terminate()
    try:
        proc.wait(5)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()

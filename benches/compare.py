#!/usr/bin/env python3
"""Measures runner-health-exporter against node_exporter in one run.

For each exporter: time from start to the first successful scrape; resident
memory at idle, after load and at peak (VmHWM); scrape throughput and latency
percentiles with wrk at 1 and 16 connections, alternating the two exporters
round by round; CPU time per scrape from /proc/PID/stat over the requests wrk
made; response size plain and gzip. node_exporter runs with the collectors
that match ours: cpu, meminfo, filesystem, loadavg.
"""
import argparse
import gzip
import os
import platform
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

CLK_TCK = os.sysconf("SC_CLK_TCK")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        rest = f.read().rsplit(")", 1)[1].split()
    return (int(rest[11]) + int(rest[12])) / CLK_TCK


def rss_kib(pid, field="VmRSS"):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def get(url, headers=None):
    req = urllib.request.Request(url, headers=headers or {})
    with urllib.request.urlopen(req, timeout=5) as r:
        return r.status, r.read()


class Target:
    def __init__(self, name, argv, port):
        self.name, self.argv, self.port = name, argv, port
        self.url = f"http://127.0.0.1:{port}/metrics"

    def start(self):
        t0 = time.perf_counter()
        self.proc = subprocess.Popen(self.argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        while True:
            try:
                status, _ = get(self.url)
                if status == 200:
                    self.start_ms = (time.perf_counter() - t0) * 1000
                    return
            except OSError:
                pass
            if self.proc.poll() is not None:
                sys.exit(f"{self.name} exited during start-up")
            if time.perf_counter() - t0 > 20:
                sys.exit(f"{self.name} did not serve within 20 s")
            time.sleep(0.0005)

    def stop(self):
        self.proc.terminate()
        self.proc.wait(timeout=5)


UNIT = {"us": 1e-3, "ms": 1.0, "s": 1000.0}


def parse_wrk(out):
    req = int(re.search(r"(\d+) requests in", out).group(1))
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    lat = {}
    for pct, val, unit in re.findall(r"^\s+(50|75|90|99)%\s+([\d.]+)(us|ms|s)\s*$", out, re.M):
        lat[pct] = float(val) * UNIT[unit]
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if errors:
        sys.exit(f"wrk saw errors:\n{out}")
    return req, rps, lat


def load(target, conns, duration):
    threads = min(conns, 2)
    before = cpu_seconds(target.proc.pid)
    out = subprocess.run(
        ["wrk", f"-t{threads}", f"-c{conns}", f"-d{duration}s", "--latency", target.url],
        check=True, capture_output=True, text=True,
    ).stdout
    after = cpu_seconds(target.proc.pid)
    req, rps, lat = parse_wrk(out)
    return {"requests": req, "rps": rps, "lat": lat, "cpu_ms_per_scrape": (after - before) * 1000 / max(req, 1)}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--binary", required=True)
    ap.add_argument("--node-exporter", default="prometheus-node-exporter")
    ap.add_argument("--duration", type=int, default=10)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()

    cfg = tempfile.NamedTemporaryFile("w", suffix=".toml", delete=False)
    # Nothing to watch but the host, like node_exporter with its four collectors.
    cfg.write("[systemd]\nenabled = false\n[runner_files]\nroot_patterns = []\n")
    cfg.close()
    ours = Target("runner-health-exporter", [args.binary, f"--web.listen-address=127.0.0.1:{{}}", f"--config.file={cfg.name}"], free_port())
    ours.argv[1] = ours.argv[1].format(ours.port)
    node = Target("node_exporter", [args.node_exporter, "--collector.disable-defaults", "--collector.cpu",
                                    "--collector.meminfo", "--collector.filesystem", "--collector.loadavg",
                                    f"--web.listen-address=127.0.0.1:{{}}"], free_port())
    node.argv[-1] = node.argv[-1].format(node.port)
    targets = [ours, node]
    results = {t.name: {"start_ms": [], "rss_idle": 0, "c1": [], "c16": []} for t in targets}
    try:
        for t in targets:
            t.start()
            results[t.name]["start_ms"].append(t.start_ms)
        time.sleep(3)
        for t in targets:
            results[t.name]["rss_idle"] = rss_kib(t.proc.pid)
            _, plain = get(t.url)
            _, gz = get(t.url, {"Accept-Encoding": "gzip"})
            results[t.name]["size_plain"] = len(plain)
            results[t.name]["size_gzip"] = len(gz) if gz[:2] == b"\x1f\x8b" else len(gzip.compress(plain))
        for rnd in range(args.rounds):
            for conns in (1, 16):
                order = targets if rnd % 2 == 0 else list(reversed(targets))
                for t in order:
                    results[t.name][f"c{conns}"].append(load(t, conns, args.duration))
        for t in targets:
            results[t.name]["rss_after"] = rss_kib(t.proc.pid)
            results[t.name]["rss_peak"] = rss_kib(t.proc.pid, "VmHWM")
        # Start-up again, a few times, for a steadier figure.
        for _ in range(4):
            for t in targets:
                t.stop()
                t.start()
                results[t.name]["start_ms"].append(t.start_ms)
    finally:
        for t in targets:
            try:
                t.stop()
            except Exception:
                pass
        os.unlink(cfg.name)

    def med(name, key, field, sub=None):
        runs = results[name][key]
        vals = [r[field][sub] if sub else r[field] for r in runs]
        return statistics.median(vals)

    a, b = ours.name, node.name
    rows = []
    def row(label, va, vb, fmt, better_low):
        ratio = (vb / va if better_low else va / vb) if va and vb else float("nan")
        rows.append(f"| {label} | {fmt.format(va)} | {fmt.format(vb)} | {ratio:.1f}x |")
    for c in (1, 16):
        row(f"requests/s, {c} connection{'s' if c > 1 else ''}", med(a, f"c{c}", "rps"), med(b, f"c{c}", "rps"), "{:,.0f}", False)
        for p in ("50", "99"):
            row(f"p{p} latency, {c} conn. (ms)", med(a, f"c{c}", "lat", p), med(b, f"c{c}", "lat", p), "{:.3f}", True)
        row(f"CPU per scrape, {c} conn. (ms)", med(a, f"c{c}", "cpu_ms_per_scrape"), med(b, f"c{c}", "cpu_ms_per_scrape"), "{:.4f}", True)
    row("resident memory idle (MiB)", results[a]["rss_idle"] / 1024, results[b]["rss_idle"] / 1024, "{:.1f}", True)
    row("resident memory after load (MiB)", results[a]["rss_after"] / 1024, results[b]["rss_after"] / 1024, "{:.1f}", True)
    row("resident memory peak (MiB)", results[a]["rss_peak"] / 1024, results[b]["rss_peak"] / 1024, "{:.1f}", True)
    row("response size plain (bytes)", results[a]["size_plain"], results[b]["size_plain"], "{:,}", True)
    row("response size gzip (bytes)", results[a]["size_gzip"], results[b]["size_gzip"], "{:,}", True)
    row("start to first scrape (ms, median)", statistics.median(results[a]["start_ms"]), statistics.median(results[b]["start_ms"]), "{:.1f}", True)

    print(f"Machine: {platform.machine()}, {os.cpu_count()} CPUs, kernel {platform.release()}; "
          f"{args.rounds} rounds of {args.duration} s per load, alternating; medians.")
    print()
    print(f"| measure | {a} | {b} | advantage |")
    print("|---|---|---|---|")
    print("\n".join(rows))


if __name__ == "__main__":
    main()

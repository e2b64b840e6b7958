#!/usr/bin/env python3
"""Measures runner-health-exporter against node_exporter in one run.

For each exporter: time from start to the first successful scrape; resident
memory at idle, after load and at peak (VmHWM); scrape throughput and latency
percentiles with wrk at 1 and 16 connections, alternating the two exporters
round by round; CPU time per scrape from /proc/PID/stat over the requests wrk
made; response size plain and gzip. node_exporter runs with the collectors
that match ours: cpu, meminfo, filesystem, loadavg.

Each load runs in two placements (on a machine with at least 2 CPUs):
  shared  wrk (2 threads) and the exporter on all CPUs, as they come;
  pinned  a second instance of each exporter, started on CPU 0 (taskset -c 0,
          so each runtime sizes itself for one CPU: one tokio worker for
          ours, GOMAXPROCS=1 for node_exporter), wrk with 1 thread on
          CPU 1, so the load generator does not take CPU from the exporter
          (nor the reverse). Memory and start-up are measured on the
          shared instances.
The run-queue wait rows say how long the exporter's threads were ready to
run but had no CPU during a load (from /proc/PID/task/*/schedstat): the
share of the latency that is CPU contention rather than work.
Then the targets of the issue are checked and the release binary's size
(stripped) is printed.
"""
import argparse
import gzip
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

from procstat import cpu_seconds, free_port, rss_kib


def runqueue_wait_s(pid):
    """Time the process's live threads spent runnable but waiting for a CPU
    (second field of /proc/PID/task/TID/schedstat, nanoseconds)."""
    total = 0
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/schedstat") as f:
                total += int(f.read().split()[1])
        except (OSError, IndexError, ValueError):
            pass
    return total / 1e9


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


def load(target, conns, duration, placement):
    if placement == "pinned":
        argv = ["taskset", "-c", "1", "wrk", "-t1"]
    else:
        argv = ["wrk", f"-t{min(conns, 2)}"]
    before = cpu_seconds(target.proc.pid)
    wait_before = runqueue_wait_s(target.proc.pid)
    out = subprocess.run(
        argv + [f"-c{conns}", f"-d{duration}s", "--latency", target.url],
        check=True, capture_output=True, text=True,
    ).stdout
    after = cpu_seconds(target.proc.pid)
    wait = runqueue_wait_s(target.proc.pid) - wait_before
    req, rps, lat = parse_wrk(out)
    return {"requests": req, "rps": rps, "lat": lat, "cpu_ms_per_scrape": (after - before) * 1000 / max(req, 1),
            "runq_ms_per_s": wait * 1000 / duration}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--binary", required=True)
    ap.add_argument("--node-exporter", default="prometheus-node-exporter")
    ap.add_argument("--duration", type=int, default=10)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--isolate", action="store_true",
                    help="run in a new session whose autogroup has nice -20 (root, on a machine shared with "
                         "other work: keeps their processes from taking the CPU; a diagnostic, not the default)")
    ap.add_argument("--placements", default="shared,pinned" if len(os.sched_getaffinity(0)) >= 2 else "shared",
                    help="comma-separated: shared, pinned")
    args = ap.parse_args()
    placements = args.placements.split(",")
    if "pinned" in placements and not {0, 1} <= os.sched_getaffinity(0):
        sys.exit("pinned placement needs CPUs 0 and 1")
    with open("/proc/loadavg") as f:
        load_start = f.read().split()[0]
    if args.isolate:
        # The scheduler's autogroups share the CPU per session, whatever the
        # nice value of a process: only the session's own group can be
        # favoured. `setsid -w` runs this script again in a new session (and
        # so a new autogroup), keeping the caller's shell out of it.
        if os.getsid(0) != os.getpid():
            os.execvp("setsid", ["setsid", "-w", sys.executable] + sys.argv)
        with open("/proc/self/autogroup", "w") as f:
            f.write("-20")

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
    # The pinned placement's instances, started on CPU 0.
    pinned = {}
    if "pinned" in placements:
        for t in targets:
            port = free_port()
            argv = ["taskset", "-c", "0"] + [a.replace(str(t.port), str(port)) for a in t.argv]
            pinned[t.name] = Target(t.name, argv, port)
    results = {t.name: {"start_ms": [], "rss_idle": 0} for t in targets}
    for t in targets:
        for c in (1, 16):
            for p in placements:
                results[t.name][f"c{c}_{p}"] = []
    try:
        for t in targets:
            t.start()
            results[t.name]["start_ms"].append(t.start_ms)
        for t in pinned.values():
            t.start()
        time.sleep(3)
        for t in targets:
            results[t.name]["rss_idle"] = rss_kib(t.proc.pid)
            _, plain = get(t.url)
            _, gz = get(t.url, {"Accept-Encoding": "gzip"})
            results[t.name]["size_plain"] = len(plain)
            results[t.name]["size_gzip"] = len(gz) if gz[:2] == b"\x1f\x8b" else len(gzip.compress(plain))
        for rnd in range(args.rounds):
            for conns in (1, 16):
                for placement in placements:
                    order = targets if rnd % 2 == 0 else list(reversed(targets))
                    for t in order:
                        target = pinned[t.name] if placement == "pinned" else t
                        results[t.name][f"c{conns}_{placement}"].append(load(target, conns, args.duration, placement))
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
        for t in targets + list(pinned.values()):
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
    for pl in placements:
        for c in (1, 16):
            k = f"c{c}_{pl}"
            row(f"requests/s, {c} connection{'s' if c > 1 else ''}, {pl}", med(a, k, "rps"), med(b, k, "rps"), "{:,.0f}", False)
            for p in ("50", "99"):
                row(f"p{p} latency, {c} conn., {pl} (ms)", med(a, k, "lat", p), med(b, k, "lat", p), "{:.3f}", True)
            row(f"CPU per scrape, {c} conn., {pl} (ms)", med(a, k, "cpu_ms_per_scrape"), med(b, k, "cpu_ms_per_scrape"), "{:.4f}", True)
            # Not a figure of merit: how long the exporter's threads were
            # ready to run but had no CPU (contention with wrk and others).
            rows.append(f"| run-queue wait, {c} conn., {pl} (ms per s) | {med(a, k, 'runq_ms_per_s'):.0f} | "
                        f"{med(b, k, 'runq_ms_per_s'):.0f} | |")
    row("resident memory idle (MiB)", results[a]["rss_idle"] / 1024, results[b]["rss_idle"] / 1024, "{:.1f}", True)
    row("resident memory after load (MiB)", results[a]["rss_after"] / 1024, results[b]["rss_after"] / 1024, "{:.1f}", True)
    row("resident memory peak (MiB)", results[a]["rss_peak"] / 1024, results[b]["rss_peak"] / 1024, "{:.1f}", True)
    row("response size plain (bytes)", results[a]["size_plain"], results[b]["size_plain"], "{:,}", True)
    row("response size gzip (bytes)", results[a]["size_gzip"], results[b]["size_gzip"], "{:,}", True)
    row("start to first scrape (ms, median)", statistics.median(results[a]["start_ms"]), statistics.median(results[b]["start_ms"]), "{:.1f}", True)

    with open("/proc/loadavg") as f:
        load_end = f.read().split()[0]
    print(f"Machine: {platform.machine()}, {os.cpu_count()} CPUs, kernel {platform.release()}; "
          f"{args.rounds} rounds of {args.duration} s per load, alternating; medians. "
          f"Load average {load_start} at start, {load_end} at end."
          + (" Isolated: own session, autogroup nice -20." if args.isolate else ""))
    print()
    print(f"| measure | {a} | {b} | advantage |")
    print("|---|---|---|---|")
    print("\n".join(rows))

    size = os.path.getsize(args.binary)
    print()
    print("Targets:")
    def check(label, ok, detail):
        print(f"- {'met' if ok else 'MISSED'}: {label}: {detail}")
    for pl in placements:
        k = f"c16_{pl}"
        ratio = med(a, k, "rps") / med(b, k, "rps")
        check(f"requests/s at 16 connections >= 10x node_exporter's ({pl})", ratio >= 10, f"{ratio:.1f}x")
        p99 = med(a, k, "lat", "99")
        check(f"p99 at 16 connections < 2 ms ({pl})", p99 < 2, f"{p99:.3f} ms")
    worst = max(med(a, f"c{c}_{pl}", "cpu_ms_per_scrape") for c in (1, 16) for pl in placements)
    check("CPU per scrape < 0.05 ms", worst < 0.05, f"at most {worst:.4f} ms")
    after = results[a]["rss_after"] / 1024
    # The brief's memory target is with every collector on and 10 runners
    # (benches/collection.sh); here only the host collector runs, so this is
    # a floor: if it misses here it misses there.
    check("resident memory after load < 8 MiB (host collector only)", after < 8, f"{after:.1f} MiB")
    start = statistics.median(results[a]["start_ms"])
    check("start to first scrape < 100 ms", start < 100, f"{start:.1f} ms")
    check("release binary < 10 MB stripped", size < 10_000_000,
          f"{size:,} bytes = {size / 1e6:.2f} MB ({args.binary}; the release profile strips it)")


if __name__ == "__main__":
    main()

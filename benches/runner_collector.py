#!/usr/bin/env python3
"""Benchmarks of the runner collector (docs/BENCHMARKS.md, "runner collector").

Drives the release binary as a process against synthetic runner roots and
measures what a user would: how long until the runner's state is served,
and how much CPU the exporter uses (utime + stime from /proc/PID/stat).

  cargo build --release
  python3 benches/runner_collector.py startup        # 1 GB of old logs
  python3 benches/runner_collector.py steady         # CPU vs appended bytes
  python3 benches/runner_collector.py idle --seconds 180   # 10 idle runners

Options: --bin PATH (default target/release/runner-health-exporter),
--dir PATH (where roots are created; default a temp dir under /var/tmp).
"""

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

from procstat import cpu_seconds, free_port, scrape, stop, value

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
MB = 1024 * 1024

RUNNER_JSON = (
    "\ufeff{\"agentId\": 23, \"agentName\": \"%s\", \"poolId\": 1, \"poolName\": \"Default\", "
    "\"gitHubUrl\": \"https://github.com/acme/app\", \"workFolder\": \"_work\"}"
)


def ts(i):
    """A log timestamp i seconds after 2026-01-05 00:00:00Z (within the day cycle)."""
    i %= 86400
    return "2026-01-05 %02d:%02d:%02dZ" % (i // 3600, i // 60 % 60, i % 60)


def job_cycle(i):
    """One job as the listener logs it, plus noise lines, ~1 KB."""
    t = ts(i)
    lines = [
        "[%s INFO JobDispatcher] Job request 7f1c2a44-0d1e-5c8e-9b61-%012d processed succeed." % (t, i),
        "[%s INFO Terminal] WRITE LINE: %s: Running job: build %d (ubuntu, release)" % (t, t, i),
        "[%s INFO JobDispatcher] Start renew job request %d for job 7f1c2a44-0d1e-5c8e-9b61-%012d." % (t, i, i),
        "[%s INFO JobDispatcher] Successfully renew job request %d, job is valid till 2026-01-05 10:00:00Z" % (t, i),
        "[%s INFO JobDispatcher] Worker finished for job 7f1c2a44-0d1e-5c8e-9b61-%012d. Code: 100" % (t, i),
        "[%s INFO JobDispatcher] finish job request for job 7f1c2a44-0d1e-5c8e-9b61-%012d with result: Succeeded" % (t, i),
        "[%s INFO Terminal] WRITE LINE: %s: Job build %d (ubuntu, release) completed with result: Succeeded" % (t, t, i),
        "[%s INFO JobDispatcher] Stop renew job request for job 7f1c2a44-0d1e-5c8e-9b61-%012d." % (t, i),
        "[%s INFO MessageListener] Get next message with last message id %d" % (t, i),
    ]
    return ("\n".join(lines) + "\n").encode()


def header(version="2.330.0"):
    t = ts(0)
    return (
        "[%s INFO HostContext] Well known directory 'Bin': '/home/runner/actions-runner/bin'\n"
        "[%s INFO Terminal] WRITE LINE: Current runner version: '%s'\n"
        "[%s INFO Terminal] WRITE LINE: %s: Listening for Jobs\n" % (t, t, version, t, t)
    ).encode()


def log_of_size(size, start=0):
    """Listener log content of about `size` bytes: header and job cycles."""
    out = bytearray(header())
    i = start
    while len(out) < size:
        out += job_cycle(i)
        i += 1
    return bytes(out)


def make_root(base, name, newest_bytes=64 * 1024, old_files=0, old_size=8 * MB, workers=0):
    root = os.path.join(base, name)
    diag = os.path.join(root, "_diag")
    os.makedirs(diag, exist_ok=True)
    with open(os.path.join(root, ".runner"), "w", encoding="utf-8") as f:
        f.write(RUNNER_JSON % name)
    with open(os.path.join(root, ".service"), "w") as f:
        f.write("actions.runner.acme-app.%s.service\n" % name)
    if old_files:
        block = log_of_size(old_size)
        for k in range(old_files):
            day = 1 + k // 24
            with open(os.path.join(diag, "Runner_202512%02d-%02d0000-utc.log" % (day, k % 24)), "wb") as f:
                f.write(block[:old_size])
    for k in range(workers):
        with open(os.path.join(diag, "Worker_20251201-%06d-utc.log" % k), "wb") as f:
            f.write(b"[2025-12-01 00:00:00Z INFO Worker] Version: 2.330.0\n")
    newest = os.path.join(diag, "Runner_20260105-000000-utc.log")
    with open(newest, "wb") as f:
        f.write(log_of_size(newest_bytes))
        t = ts(80000)
        f.write(("[%s INFO Terminal] WRITE LINE: %s: Running job: final\n" % (t, t)).encode())
    return root, newest


class Exporter:
    def __init__(self, binary, workdir, roots, host=False, poll="1s"):
        self.port = free_port()
        cfg = os.path.join(workdir, "config-%d.toml" % self.port)
        with open(cfg, "w") as f:
            f.write("[host]\nenabled = %s\n\n[systemd]\nenabled = false\n\n" % ("true" if host else "false"))
            f.write("[runner_files]\nroot_patterns = []\nlog_poll_interval = \"%s\"\n" % poll)
            for r in roots:
                f.write("\n[[runner]]\nroot = \"%s\"\n" % r)
        self.started = time.monotonic()
        self.proc = subprocess.Popen(
            [binary, "--config.file=" + cfg, "--web.listen-address=127.0.0.1:%d" % self.port, "--log.level=warn"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    def metrics(self, timeout=5):
        return scrape(self.port, timeout)

    def wait_for(self, pred, limit=30.0, step=0.002):
        deadline = time.monotonic() + limit
        while time.monotonic() < deadline:
            try:
                m = self.metrics()
                if pred(m):
                    return time.monotonic() - self.started, m
            except OSError:
                pass
            time.sleep(step)
        raise RuntimeError("condition not met within %.0f s" % limit)

    def cpu_seconds(self):
        return cpu_seconds(self.proc.pid)

    def stop(self):
        stop(self.proc)


def du(path):
    total = 0
    for d, _, files in os.walk(path):
        for f in files:
            total += os.path.getsize(os.path.join(d, f))
    return total


def startup(args, base):
    print("## start-up with old logs in _diag")
    cases = [
        ("newest 8 MB only", dict(newest_bytes=8 * MB)),
        ("newest 8 MB + 1 GB old", dict(newest_bytes=8 * MB, old_files=128, workers=2000)),
    ]
    for label, kw in cases:
        root, _ = make_root(base, "startup-%d" % len(label), **kw)
        size = du(os.path.join(root, "_diag"))
        # Read once so the page cache is warm for every run alike.
        for d, _, files in os.walk(root):
            for f in files:
                with open(os.path.join(d, f), "rb") as fh:
                    while fh.read(8 * MB):
                        pass
        times, durations, rss = [], [], []
        name = os.path.basename(root)
        for _ in range(args.runs):
            e = Exporter(args.bin, base, [root])
            try:
                t, m = e.wait_for(
                    lambda m: 'version="2.330.0"' in m
                    and value(m, 'github_runner_job_running{runner="%s"}' % name) == 1.0
                )
                times.append(t * 1000)
                durations.append(value(m, 'github_runner_exporter_collector_duration_seconds{collector="runner"}') * 1000)
                bytes_read = value(m, 'github_runner_exporter_log_bytes_read_total{runner="%s"}' % name)
                with open("/proc/%d/status" % e.proc.pid) as f:
                    rss.append(int(re.search(r"VmRSS:\s+(\d+)", f.read()).group(1)) / 1024)
            finally:
                e.stop()
        print(
            "%-26s _diag %7.1f MB: state served after %5.0f ms median (min %.0f, max %.0f) of %d runs; "
            "first collection %.1f ms median; %.1f MB read; RSS %.1f MB"
            % (label, size / MB, statistics.median(times), min(times), max(times), args.runs,
               statistics.median(durations), bytes_read / MB, statistics.median(rss))
        )
    # Baseline: the exporter alone (no runner) until it serves.
    times = []
    for _ in range(args.runs):
        e = Exporter(args.bin, base, [])
        try:
            t, _ = e.wait_for(lambda m: 'collector_success{collector="runner"} 1' in m)
            times.append(t * 1000)
        finally:
            e.stop()
    print("%-26s: first scrape with the runner collector done after %5.0f ms median" % ("no runner (baseline)", statistics.median(times)))


def steady(args, base):
    print("## steady cost vs appended bytes (one runner, %d s per rate)" % args.seconds)
    root, newest = make_root(base, "steady")
    name = "steady"
    e = Exporter(args.bin, base, [root])
    try:
        e.wait_for(lambda m: 'version="2.330.0"' in m)
        chunk = b"".join(job_cycle(i) for i in range(100))  # ~90 KB, 100 jobs
        jobs_per_chunk = 100
        rows = []
        for rate in args.rates:
            before_m = e.metrics()
            jobs0 = value(before_m, 'github_runner_jobs_total{runner="%s",result="Succeeded"}' % name)
            b0 = value(before_m, 'github_runner_exporter_log_bytes_read_total{runner="%s"}' % name)
            cpu0 = e.cpu_seconds()
            t0 = time.monotonic()
            written = 0
            with open(newest, "ab") as f:
                while time.monotonic() - t0 < args.seconds:
                    due = rate * (time.monotonic() - t0)
                    while written + len(chunk) <= due:
                        f.write(chunk)
                        f.flush()
                        written += len(chunk)
                    time.sleep(0.05)
            # Let the exporter catch up, then measure.
            target = jobs0 + written // len(chunk) * jobs_per_chunk
            e.wait_for(lambda m: value(m, 'github_runner_jobs_total{runner="%s",result="Succeeded"}' % name) == target, limit=60)
            elapsed = time.monotonic() - t0
            cpu = e.cpu_seconds() - cpu0
            b1 = value(e.metrics(), 'github_runner_exporter_log_bytes_read_total{runner="%s"}' % name)
            rows.append((rate, (b1 - b0) / MB, cpu, elapsed))
            print(
                "rate %8.0f KB/s: %7.1f MB read, %6.2f CPU s in %5.1f s = %5.2f%% of a core; %s"
                % (rate / 1024, (b1 - b0) / MB, cpu, elapsed, 100 * cpu / elapsed,
                   ("%.3f CPU s per MB" % (cpu / ((b1 - b0) / MB))) if b1 > b0 else "idle")
            )
    finally:
        e.stop()


def idle(args, base):
    print("## idle runners (%d s each, release build)" % args.seconds)
    results = {}
    for count in (0, 10):
        roots = []
        for k in range(count):
            root, _ = make_root(base, "idle-%02d" % k, newest_bytes=256 * 1024, workers=2000)
            roots.append(root)
        e = Exporter(args.bin, base, roots)
        try:
            e.wait_for(lambda m: 'collector_success{collector="runner"} 1' in m
                       and m.count("github_runner_job_running{") == count)
            time.sleep(2)
            cpu0 = e.cpu_seconds()
            t0 = time.monotonic()
            time.sleep(args.seconds)
            cpu = e.cpu_seconds() - cpu0
            elapsed = time.monotonic() - t0
            results[count] = cpu / elapsed
            print("%2d idle runners (2000 Worker logs each): %.3f CPU s in %.0f s = %.4f%% of a core"
                  % (count, cpu, elapsed, 100 * cpu / elapsed))
        finally:
            e.stop()
    print("runner collector share for 10 idle runners: %.4f%% of a core" % (100 * (results[10] - results[0])))


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("scenario", choices=["startup", "steady", "idle", "all"])
    p.add_argument("--bin", default=os.path.join(REPO, "target/release/runner-health-exporter"))
    p.add_argument("--dir", default="/var/tmp")
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--seconds", type=int, default=None)
    p.add_argument("--rates", type=lambda s: [float(x) * 1024 for x in s.split(",")],
                   default=[float(x) * 1024 for x in (0, 10, 100, 1000, 10000)],
                   help="KB/s, comma-separated (steady)")
    args = p.parse_args()
    if not os.access(args.bin, os.X_OK):
        sys.exit("no binary at %s: cargo build --release" % args.bin)
    base = tempfile.mkdtemp(prefix="rhe-bench-", dir=args.dir)
    try:
        if args.scenario in ("startup", "all"):
            startup(args, base)
        seconds = args.seconds
        if args.scenario in ("steady", "all"):
            args.seconds = seconds or 30
            steady(args, base)
        if args.scenario in ("idle", "all"):
            args.seconds = seconds or 180
            idle(args, base)
    finally:
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Soak test (not CI): the release exporter with every collector on, scraped
50 times a second for an hour while runners appear and vanish.

What runs:
  * the exporter (release build), host + systemd + runner files + GitHub
    (fleet scope, one organization) collectors on;
  * testkit's fake-systemd (a real dbus-daemon with a stand-in for systemd)
    and fake-github (the local server answering like GitHub's REST API),
    both steered through their stdin;
  * a scraper thread: GET /metrics at --rate per second on one keep-alive
    connection (a new one if it breaks), recording latency and errors;
  * a churn loop: every --churn seconds one new runner appears (a runner
    root copied from tests/fixtures/runner/basic with its own .runner and a
    fresh _diag log, a unit on the fake systemd whose WorkingDirectory
    points at it, a runner with the same name at GitHub) and the oldest of
    --live runners vanishes (unit removed, root deleted, GitHub runner
    removed, in a random order). Every live runner's log gets a job
    started/completed pair now and then, so the log tailer, the job
    counters and the duration histogram keep working. Runner names are
    never reused, like ephemeral runners: series of vanished runners must
    go away, not pile up.
  * a sampler: every --sample seconds the exporter's resident memory
    (VmRSS), open file descriptors (/proc/PID/fd), threads, the size and
    series count of the last scrape, and the machine's load average (the
    scrape latencies mean little on a busy machine).

At the end it prints the samples' summary and whether resident memory and
open descriptors are flat after warm-up: the window right after warm-up
(--warmup, default 10 min) is compared with the last window (--window,
default 10 min). Flat means: the last window's peak RSS is within 10 % (and
at least 1 MiB) of the first window's peak, and the peak fd count within 2.
All samples go to a CSV file (--csv).

  benches/soak.py [--duration 3600] [--rate 50] [--churn 2] [--live 10]
                  [--sample 5] [--warmup 600] [--window 600] [--csv FILE]
                  [--no-build]

Durations are seconds. For a quick check: --duration 120 (warm-up and
windows shrink to a sixth and a quarter of the run when it is short).
"""

import argparse
import csv
import http.client
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIXTURE = os.path.join(ROOT, "tests", "fixtures", "runner", "basic")
ORG = "orgs/acme"


def log_ts(t):
    return time.strftime("%Y-%m-%d %H:%M:%SZ", time.gmtime(t))


def status_line(t, msg):
    ts = log_ts(t)
    return f"[{ts} INFO Terminal] WRITE LINE: {ts}: {msg}\n"


class Proc:
    """A child process steered by lines on its stdin."""

    def __init__(self, argv, env=None):
        self.p = subprocess.Popen(
            argv,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            bufsize=1,
            env=env,
        )
        self.lock = threading.Lock()

    def first_line(self):
        return self.p.stdout.readline().strip()

    def send(self, line):
        with self.lock:
            self.p.stdin.write(line + "\n")
            self.p.stdin.flush()
            answer = self.p.stdout.readline().strip()
        if answer != "ok":
            raise RuntimeError(f"{line!r}: {answer!r}")

    def stop(self):
        try:
            self.p.stdin.close()
        except OSError:
            pass
        try:
            self.p.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.p.kill()
            self.p.wait()


class Scraper(threading.Thread):
    def __init__(self, addr, rate):
        super().__init__(daemon=True)
        self.host, self.port = addr.rsplit(":", 1)
        self.interval = 1.0 / rate
        self.stop_flag = threading.Event()
        self.lock = threading.Lock()
        self.count = 0
        self.errors = 0
        self.latencies = []  # per sample window, reset by take()
        self.worst = 0.0
        self.last_body = b""

    def conn(self):
        return http.client.HTTPConnection(self.host, int(self.port), timeout=5)

    def run(self):
        c = self.conn()
        nxt = time.monotonic()
        while not self.stop_flag.is_set():
            t0 = time.monotonic()
            try:
                c.request("GET", "/metrics")
                r = c.getresponse()
                body = r.read()
                ok = r.status == 200
            except (OSError, http.client.HTTPException):
                ok = False
                body = b""
                c.close()
                c = self.conn()
            dt = time.monotonic() - t0
            with self.lock:
                self.count += 1
                if not ok:
                    self.errors += 1
                else:
                    self.last_body = body
                self.latencies.append(dt)
                self.worst = max(self.worst, dt)
            nxt += self.interval
            pause = nxt - time.monotonic()
            if pause > 0:
                time.sleep(pause)
            else:
                nxt = time.monotonic()  # fell behind: do not burst
        c.close()

    def take(self):
        with self.lock:
            lat, self.latencies = self.latencies, []
            return self.count, self.errors, lat, self.last_body


def proc_sample(pid):
    rss = threads = 0
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1]) * 1024
            elif line.startswith("Threads:"):
                threads = int(line.split()[1])
    fds = len(os.listdir(f"/proc/{pid}/fd"))
    return rss, fds, threads


def pct(values, q):
    if not values:
        return 0.0
    s = sorted(values)
    return s[min(len(s) - 1, int(q * len(s)))]


class Fleet:
    """Runners appearing and vanishing across systemd, disk and GitHub."""

    def __init__(self, work, systemd, github, live):
        self.work = work
        self.systemd = systemd
        self.github = github
        self.live_max = live
        self.live = []  # (n, name, root, unit)
        self.next = 1
        self.created = 0
        self.removed = 0

    def root_of(self, n):
        return os.path.join(self.work, "roots", f"actions-runner-soak-{n}")

    def add(self):
        n = self.next
        self.next += 1
        name = f"soak-{n}"
        root = self.root_of(n)
        os.makedirs(os.path.join(root, "_diag"))
        # .runner with this runner's id and name (the credential files of
        # the fixture are not needed and never read).
        with open(os.path.join(FIXTURE, ".runner"), encoding="utf-8-sig") as f:
            text = f.read()
        text = text.replace('"agentId": 23', f'"agentId": {100000 + n}')
        text = text.replace('"agentName": "linux_runner"', f'"agentName": "{name}"')
        with open(os.path.join(root, ".runner"), "w") as f:
            f.write(text)
        now = time.time()
        log = os.path.join(root, "_diag", time.strftime("Runner_%Y%m%d-%H%M%S-utc.log", time.gmtime(now)))
        with open(log, "w") as f:
            ts = log_ts(now)
            f.write(f"[{ts} INFO Terminal] WRITE LINE: Current runner version: '2.331.0'\n")
            f.write(status_line(now, "Listening for Jobs"))
        unit = f"actions.runner.acme-app.{name}.service"
        self.systemd.send(f"add {unit} {root}")
        self.github.send(f"add {ORG} {100000 + n} {name}")
        self.live.append((n, name, root, unit, log))
        self.created += 1

    def remove_oldest(self):
        n, name, root, unit, _ = self.live.pop(0)
        steps = [
            lambda: self.systemd.send(f"remove {unit}"),
            lambda: shutil.rmtree(root, ignore_errors=True),
            lambda: self.github.send(f"remove {ORG} {100000 + n}"),
        ]
        random.shuffle(steps)
        for s in steps:
            s()
        self.removed += 1

    def step(self):
        self.add()
        while len(self.live) > self.live_max:
            self.remove_oldest()
        # A job on one live runner: started now, completed next step.
        n, name, root, unit, log = random.choice(self.live)
        now = time.time()
        with open(log, "a") as f:
            f.write(status_line(now, "Job build completed with result: Succeeded"))
            f.write(status_line(now, "Running job: build"))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--duration", type=float, default=3600)
    ap.add_argument("--rate", type=float, default=50)
    ap.add_argument("--churn", type=float, default=2)
    ap.add_argument("--live", type=int, default=10)
    ap.add_argument("--sample", type=float, default=5)
    ap.add_argument("--warmup", type=float, default=None)
    ap.add_argument("--window", type=float, default=None)
    ap.add_argument("--csv", default=None)
    ap.add_argument("--no-build", action="store_true")
    a = ap.parse_args()
    warmup = a.warmup if a.warmup is not None else min(600, a.duration / 6)
    window = a.window if a.window is not None else min(600, a.duration / 4)

    os.chdir(ROOT)
    if not a.no_build:
        subprocess.run(
            ["cargo", "build", "--release", "--quiet", "--bin", "runner-health-exporter"],
            check=True,
        )
        subprocess.run(
            ["cargo", "build", "--release", "--quiet", "-p", "testkit",
             "--bin", "fake-systemd", "--bin", "fake-github"],
            check=True,
        )
    rel = os.path.join(ROOT, "target", "release")
    work = tempfile.mkdtemp(prefix="soak-")
    os.makedirs(os.path.join(work, "roots"))
    procs = []
    exporter = None
    try:
        systemd = Proc([os.path.join(rel, "fake-systemd")])
        procs.append(systemd)
        bus = systemd.first_line()
        github = Proc([os.path.join(rel, "fake-github"), "--org", "acme", "--token", "soak-token"])
        procs.append(github)
        url = github.first_line().split()[1]
        token = os.path.join(work, "token")
        with open(token, "w") as f:
            f.write("soak-token\n")
        os.chmod(token, 0o600)
        config = os.path.join(work, "config.toml")
        with open(config, "w") as f:
            f.write(f"""[host]
sample_interval = "5s"
[systemd]
resync_interval = "30s"
[runner_files]
root_patterns = ["{work}/roots/actions-runner-*"]
rescan_interval = "5s"
[github]
scope = "fleet"
api_url = "{url}"
token_file = "{token}"
poll_interval = "2s"
organizations = ["acme"]
""")
        env = dict(os.environ, DBUS_SYSTEM_BUS_ADDRESS=bus)
        for k in ("GITHUB_TOKEN", "NOTIFY_SOCKET", "JOURNAL_STREAM", "CREDENTIALS_DIRECTORY"):
            env.pop(k, None)
        log_path = os.path.join(work, "exporter.log")
        exporter = subprocess.Popen(
            [os.path.join(rel, "runner-health-exporter"),
             "--web.listen-address=127.0.0.1:0", f"--config.file={config}"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=open(log_path, "w"), env=env,
        )
        addr = None
        for _ in range(400):
            with open(log_path) as f:
                for line in f:
                    if "msg=listening" in line:
                        addr = line.split("address=")[1].split()[0]
            if addr or exporter.poll() is not None:
                break
            time.sleep(0.05)
        if not addr:
            sys.exit(f"exporter did not start; log in {log_path}")
        pid = exporter.pid
        fleet = Fleet(work, systemd, github, a.live)
        for _ in range(a.live):
            fleet.add()

        scraper = Scraper(addr, a.rate)
        scraper.start()
        rows = []
        t0 = time.monotonic()
        next_churn = t0 + a.churn
        next_sample = t0
        print(f"soak: {a.duration:.0f} s, {a.rate:g} scrapes/s, a runner every {a.churn:g} s "
              f"({a.live} live), samples every {a.sample:g} s; work dir {work}", flush=True)
        while True:
            now = time.monotonic()
            if now - t0 >= a.duration:
                break
            if now >= next_churn:
                fleet.step()
                next_churn += a.churn
            if now >= next_sample:
                count, errors, lat, body = scraper.take()
                rss, fds, threads = proc_sample(pid)
                series = sum(1 for l in body.split(b"\n") if l and not l.startswith(b"#"))
                rows.append({
                    "t": round(now - t0, 1), "rss_bytes": rss, "fds": fds, "threads": threads,
                    "scrapes": count, "errors": errors,
                    "p99_ms": round(pct(lat, 0.99) * 1000, 2), "max_ms": round(max(lat, default=0) * 1000, 2),
                    "body_bytes": len(body), "series": series,
                    "runners_created": fleet.created, "runners_removed": fleet.removed,
                    "load1": float(open("/proc/loadavg").read().split()[0]),
                })
                if len(rows) % max(1, int(60 / a.sample)) == 1:
                    r = rows[-1]
                    print(f"  t={r['t']:7.0f}s rss={rss / 2**20:6.2f} MiB fds={fds:3d} threads={threads:2d} "
                          f"scrapes={count} errors={errors} p99={r['p99_ms']} ms max={r['max_ms']} ms "
                          f"series={series} runners +{fleet.created}/-{fleet.removed}", flush=True)
                next_sample += a.sample
                if exporter.poll() is not None:
                    sys.exit(f"exporter exited with {exporter.returncode}; log in {log_path}")
            time.sleep(max(0.0, min(next_churn, next_sample) - time.monotonic()))
        scraper.stop_flag.set()
        scraper.join()
        count, errors, _, _ = scraper.take()
    finally:
        if exporter is not None:
            exporter.send_signal(signal.SIGTERM)
            try:
                exporter.wait(timeout=10)
            except subprocess.TimeoutExpired:
                exporter.kill()
        for p in procs:
            p.stop()

    if a.csv:
        with open(a.csv, "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=list(rows[0].keys()))
            w.writeheader()
            w.writerows(rows)

    first = [r for r in rows if warmup <= r["t"] < warmup + window]
    last = [r for r in rows if r["t"] >= a.duration - window]
    if not first or not last:
        sys.exit("run too short for the windows")
    peak = lambda rs, k: max(r[k] for r in rs)
    mean = lambda rs, k: sum(r[k] for r in rs) / len(rs)
    rss1, rss2 = peak(first, "rss_bytes"), peak(last, "rss_bytes")
    fd1, fd2 = peak(first, "fds"), peak(last, "fds")
    post = [r for r in rows if r["t"] >= warmup]
    # Least-squares slope of RSS after warm-up, in MiB per hour.
    n = len(post)
    mt = sum(r["t"] for r in post) / n
    mr = sum(r["rss_bytes"] for r in post) / n
    var = sum((r["t"] - mt) ** 2 for r in post) or 1.0
    slope = sum((r["t"] - mt) * (r["rss_bytes"] - mr) for r in post) / var * 3600 / 2**20
    lat_p99 = max(r["p99_ms"] for r in rows)
    lat_max = max(r["max_ms"] for r in rows)
    rss_flat = rss2 <= max(rss1 * 1.10, rss1 + 2**20)
    fd_flat = fd2 <= fd1 + 2
    print()
    print(f"scrapes: {count} ({count / a.duration:.1f}/s), errors: {errors}; worst per-sample p99 "
          f"{lat_p99} ms, slowest scrape {lat_max} ms")
    print(f"runners: {fleet.created} created, {fleet.removed} removed; series per scrape "
          f"{min(r['series'] for r in post)}..{max(r['series'] for r in post)}")
    print(f"warm-up {warmup:.0f} s; windows of {window:.0f} s: "
          f"[{warmup:.0f}, {warmup + window:.0f}) vs [{a.duration - window:.0f}, {a.duration:.0f})")
    print(f"RSS  first window: peak {rss1 / 2**20:.2f} MiB mean {mean(first, 'rss_bytes') / 2**20:.2f} MiB; "
          f"last window: peak {rss2 / 2**20:.2f} MiB mean {mean(last, 'rss_bytes') / 2**20:.2f} MiB; "
          f"slope after warm-up {slope:+.2f} MiB/h -> {'FLAT' if rss_flat else 'GROWING'}")
    print(f"fds  first window: peak {fd1}; last window: peak {fd2} -> {'FLAT' if fd_flat else 'GROWING'}")
    print(f"threads: {min(r['threads'] for r in post)}..{max(r['threads'] for r in post)}; "
          f"machine load average (1 min) {min(r['load1'] for r in rows):.1f}..{max(r['load1'] for r in rows):.1f}")
    shutil.rmtree(work, ignore_errors=True)
    sys.exit(0 if rss_flat and fd_flat and errors == 0 else 1)


if __name__ == "__main__":
    main()

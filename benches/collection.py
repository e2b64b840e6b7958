#!/usr/bin/env python3
"""Collection cost: CPU per sampling cycle of each collector, and the steady
idle CPU with every collector at its default interval.

One environment per runner count N (default 1 and 10), as the issue asks:
N runner roots copied from tests/fixtures/runner/basic (agentId 1..N,
agentName runner0-0..), testkit's fake-systemd (a private dbus-daemon)
with N runner units whose WorkingDirectory are those roots among OTHERS
other units, and testkit's fake-github answering for the N runners in self
scope (GET /repos/acme/app/actions/runners/{id}, 304 once the ETag is known).

Per collector, the release exporter runs with only that collector on and a
short interval, so it cycles back to back; CPU is utime+stime from
/proc/PID/stat (10 ms ticks) over the window, divided by the cycles:
  host     sample_interval 100ms; cycles = window / (interval + last duration)
           (includes the exporter's own process sample, which runs on the
           host interval, and the re-render each sample causes)
  systemd  resync_interval 50ms; cycles = ListUnitsByPatterns calls the fake
           counted (one per resync); 6 Properties.Get per unit, and the /proc
           scan for the runner's processes under each WorkingDirectory
  runner   watch = false, so every root is polled on the timer (the path of
           roots inotify cannot watch; watched roots are read on events):
           poll: log_poll_interval 100ms, rescan 1h (stat .runner, _diag and
           the open logs of every root); rescan: both 100ms (globs, .service,
           _diag listing, statvfs of the work folder on every poll);
           cycles = window / (interval + last duration)
  github   self scope, poll_interval 250ms, the runner collector quiet (1h)
           after its first run; cycles = API requests / N (one conditional
           GET per runner per poll)
Then "idle": every collector on with the default intervals (host 15s,
systemd resync 30s, runner poll 1s / rescan 30s, github 60s), roots found
through the units' WorkingDirectory, no scrapes, for IDLE_SECONDS.

  benches/collection.sh [--runners 1,10] [--seconds 30] [--idle-seconds 300]
                       [--idle-poll]
"""

import argparse
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIXTURE = os.path.join(REPO, "tests/fixtures/runner/basic")
from procstat import TICK, cpu_seconds, free_port, rss_kib, scrape, stop, value


def loadavg():
    with open("/proc/loadavg") as f:
        return f.read().split()[0]


def rss_mib(pid):
    return rss_kib(pid) / 1024


def samples(text, prefix):
    """Values of the series whose name and labels start with prefix."""
    out = []
    for line in text.splitlines():
        if line.startswith(prefix):
            out.append(float(line.rsplit(" ", 1)[1]))
    return out


def unit_name(i):
    return f"actions.runner.acme-app.runner0-{i}.service"


def make_roots(base, n):
    """N copies of the basic fixture, each registered as runner0-i (id i+1)."""
    roots = []
    for i in range(n):
        root = os.path.join(base, f"actions-runner-{i}")
        shutil.copytree(FIXTURE, root, symlinks=True)
        with open(os.path.join(root, ".runner"), "w", encoding="utf-8") as f:
            f.write(
                "\ufeff{\n"
                f'  "agentId": {i + 1},\n'
                f'  "agentName": "runner0-{i}",\n'
                '  "poolId": 1,\n  "poolName": "Default",\n'
                '  "gitHubUrl": "https://github.com/acme/app",\n'
                '  "workFolder": "_work"\n}\n'
            )
        with open(os.path.join(root, ".service"), "w") as f:
            f.write(unit_name(i) + "\n")
        roots.append(root)
    return roots


class FakeSystemd:
    def __init__(self, binary, roots, others):
        args = [f"{unit_name(i)}={r}" for i, r in enumerate(roots)]
        args += [f"other-{k}.service" for k in range(others)]
        self.proc = subprocess.Popen([binary] + args, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self.address = self.proc.stdout.readline().strip()
        if not self.address:
            sys.exit("fake-systemd did not start (is dbus-daemon installed?)")

    def calls(self, method):
        self.proc.stdin.write(f"calls {method}\n")
        self.proc.stdin.flush()
        return int(self.proc.stdout.readline().split()[1])

    def stop(self):
        try:
            self.proc.stdin.write("quit\n")
            self.proc.stdin.close()
        except OSError:
            pass
        self.proc.wait(timeout=10)


class FakeGithub:
    def __init__(self, binary, n):
        self.proc = subprocess.Popen([binary, "--repo", "acme/app", "--runners", str(n)],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline().split()
        if len(line) != 2 or line[0] != "listening":
            sys.exit(f"fake-github did not start: {line}")
        self.url = line[1]

    def stop(self):
        self.proc.stdin.close()
        self.proc.wait(timeout=10)


class Exporter:
    def __init__(self, binary, workdir, config, env):
        self.port = free_port()
        path = os.path.join(workdir, f"config-{self.port}.toml")
        with open(path, "w") as f:
            f.write(config)
        self.proc = subprocess.Popen(
            [binary, f"--config.file={path}", f"--web.listen-address=127.0.0.1:{self.port}", "--log.level=warn"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=dict(os.environ, **env),
        )

    def metrics(self):
        return scrape(self.port)

    def wait_for(self, pred, what, limit=30.0):
        deadline = time.monotonic() + limit
        last = ""
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                sys.exit(f"exporter exited while waiting for {what}")
            try:
                last = self.metrics()
                if pred(last):
                    return last
            except OSError:
                pass
            time.sleep(0.05)
        sys.exit(f"exporter: no {what} within {limit:.0f} s\n{last}")

    def stop(self):
        stop(self.proc)


def toml_list(xs):
    return "[" + ", ".join(f'"{x}"' for x in xs) + "]"


def config(host=False, host_interval="1h", systemd=False, resync="30s", runner=False,
           poll="1s", rescan="30s", watch=True, roots=(), github=None):
    c = f'[host]\nenabled = {str(host).lower()}\nsample_interval = "{host_interval}"\n\n'
    c += f'[systemd]\nenabled = {str(systemd).lower()}\nresync_interval = "{resync}"\n\n'
    c += (f'[runner_files]\nenabled = {str(runner).lower()}\nroot_patterns = []\n'
          f'watch = {str(watch).lower()}\n'
          f'log_poll_interval = "{poll}"\nrescan_interval = "{rescan}"\n\n')
    if github:
        url, token, interval = github
        c += f'[github]\nscope = "self"\napi_url = "{url}"\ntoken_file = "{token}"\npoll_interval = "{interval}"\n\n'
    else:
        c += '[github]\nscope = "off"\n\n'
    for r in roots:
        c += f'[[runner]]\nroot = "{r}"\n\n'
    return c


def success(name):
    return lambda m: value(m, f'github_runner_exporter_collector_success{{collector="{name}"}}') == 1.0


def measure(e, seconds, count):
    """CPU over a window of `seconds` and the cycles `count` reports."""
    time.sleep(2)
    n0, c0, t0 = count(), cpu_seconds(e.proc.pid), time.monotonic()
    time.sleep(seconds)
    c1, t1 = cpu_seconds(e.proc.pid), time.monotonic()
    n1 = count()
    return c1 - c0, t1 - t0, n1 - n0


def by_interval(e, interval_s, collector):
    """Cycles of a collector that sleeps `interval_s` after each run."""
    start = time.monotonic()

    def count():
        d = value(e.metrics(), f'github_runner_exporter_collector_duration_seconds{{collector="{collector}"}}') or 0.0
        return (time.monotonic() - start) / (interval_s + d)
    return count


def run_env(args, n, rows, idle_rows):
    base = tempfile.mkdtemp(prefix=f"rhe-collection-{n}-", dir=args.dir)
    fs = fg = None
    try:
        roots = make_roots(base, n)
        token = os.path.join(base, "token")
        with open(token, "w") as f:
            f.write("bench-token\n")
        os.chmod(token, 0o600)
        fs = FakeSystemd(args.fake_systemd, roots, args.others)
        fg = FakeGithub(args.fake_github, n)
        env = {"DBUS_SYSTEM_BUS_ADDRESS": fs.address}

        def phase(label, cfg, ready, count_factory, what):
            e = Exporter(args.binary, base, cfg, env)
            try:
                e.wait_for(ready, what)
                count = count_factory(e)
                cpu, window, cycles = measure(e, args.seconds, count)
                rows.append((label, n, cycles, window, cpu, rss_mib(e.proc.pid)))
                print(f"  {label:<22} {n:>2} runners: {cycles:7.0f} cycles in {window:4.1f} s, CPU {cpu * 1000:6.0f} ms "
                      f"-> {cpu * 1000 / max(cycles, 1):.3f} ms per cycle", flush=True)
            finally:
                e.stop()

        phase("host sample", config(host=True, host_interval="100ms"), success("host"),
              lambda e: by_interval(e, 0.1, "host"), "host success")
        phase("systemd resync", config(systemd=True, resync="50ms"),
              lambda m: success("systemd")(m) and len(samples(m, "github_runner_service_info{")) >= n,
              lambda e: (lambda: fs.calls("ListUnitsByPatterns")), "systemd units")
        phase("runner poll", config(runner=True, poll="100ms", rescan="1h", watch=False, roots=roots),
              lambda m: success("runner")(m) and len(samples(m, "github_runner_job_running{")) == n,
              lambda e: by_interval(e, 0.1, "runner"), "runner roots")
        phase("runner rescan", config(runner=True, poll="100ms", rescan="100ms", watch=False, roots=roots),
              lambda m: success("runner")(m) and len(samples(m, "github_runner_job_running{")) == n,
              lambda e: by_interval(e, 0.1, "runner"), "runner roots")

        def api_polls(e):
            return lambda: sum(samples(e.metrics(), "github_runner_github_api_requests_total{")) / n
        phase("github poll (self)",
              config(runner=True, poll="1h", rescan="1h", roots=roots, github=(fg.url, token, "250ms")),
              lambda m: success("github")(m) and samples(m, "github_runner_registered{").count(1.0) == n,
              api_polls, "GitHub answers")

        # Idle: everything on, default intervals, roots from the units;
        # with --idle-poll also with watch = false (every root polled every
        # second, as before inotify), in the same run.
        for watch in [True] + ([False] if args.idle_poll else []):
            cfg = (f'[systemd]\nenabled = true\n\n[runner_files]\nroot_patterns = []\n'
                   f'watch = {str(watch).lower()}\n\n'
                   f'[github]\nscope = "self"\napi_url = "{fg.url}"\ntoken_file = "{token}"\n')
            mode = "defaults" if watch else "watch = false"
            e = Exporter(args.binary, base, cfg, env)
            try:
                e.wait_for(lambda m: all(success(c)(m) for c in ("host", "systemd", "runner", "github"))
                           and samples(m, "github_runner_registered{").count(1.0) == n
                           and len(samples(m, "github_runner_service_info{")) >= n,
                           "every collector", limit=60)
                time.sleep(3)
                c0, t0 = cpu_seconds(e.proc.pid), time.monotonic()
                time.sleep(args.idle_seconds)
                cpu, window = cpu_seconds(e.proc.pid) - c0, time.monotonic() - t0
                share = 100 * cpu / window
                # Where the resident memory is: pages mapped from files
                # (the binary's code and data, libc) and anonymous ones
                # (heap, stacks).
                rss = (rss_mib(e.proc.pid), rss_kib(e.proc.pid, "RssFile") / 1024,
                       rss_kib(e.proc.pid, "RssAnon") / 1024)
                idle_rows.append((n, mode, window, cpu, share, rss))
                print(f"  idle, {mode:<15} {n:>2} runners: CPU {cpu * 1000:.0f} ms in {window:.0f} s = "
                      f"{share:.4f}% of one core, RSS {rss[0]:.1f} MiB ({rss[1]:.1f} from files, "
                      f"{rss[2]:.1f} anonymous), "
                      f"load average {loadavg()}", flush=True)
            finally:
                e.stop()
    finally:
        for f in (fg, fs):
            if f:
                try:
                    f.stop()
                except Exception:
                    f.proc.kill()
        shutil.rmtree(base, ignore_errors=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--binary", default=os.path.join(REPO, "target/release/runner-health-exporter"))
    ap.add_argument("--fake-systemd", default=os.path.join(REPO, "target/release/fake-systemd"))
    ap.add_argument("--fake-github", default=os.path.join(REPO, "target/release/fake-github"))
    ap.add_argument("--runners", type=lambda s: [int(x) for x in s.split(",")], default=[1, 10])
    ap.add_argument("--others", type=int, default=20, help="non-runner units on the fake bus")
    ap.add_argument("--seconds", type=int, default=30, help="window per collector phase")
    ap.add_argument("--idle-seconds", type=int, default=300)
    ap.add_argument("--idle-poll", action="store_true",
                    help="also measure idle with watch = false (the timer poll of every root)")
    ap.add_argument("--dir", default=None, help="where the roots are created (default: $TMPDIR)")
    args = ap.parse_args()
    for b in (args.binary, args.fake_systemd, args.fake_github):
        if not os.access(b, os.X_OK):
            sys.exit(f"no binary at {b}: run benches/collection.sh (it builds them)")
    load = loadavg()
    print(f"Machine: {platform.machine()}, {os.cpu_count()} CPUs, kernel {platform.release()}, "
          f"load average {load} at start; CPU from /proc/PID/stat ({1000 // TICK} ms ticks)", flush=True)
    rows, idle_rows = [], []
    for n in args.runners:
        print(f"== {n} runner(s)", flush=True)
        run_env(args, n, rows, idle_rows)
    print()
    print("| collector cycle | runners | cycles | window (s) | CPU (ms) | CPU per cycle (ms) | RSS (MiB) |")
    print("|---|---|---|---|---|---|---|")
    for label, n, cycles, window, cpu, rss in rows:
        print(f"| {label} | {n} | {cycles:,.0f} | {window:.0f} | {cpu * 1000:,.0f} | {cpu * 1000 / max(cycles, 1):.3f} | {rss:.1f} |")
    print()
    print("| idle, default intervals, no scrapes | runner_files | window (s) | CPU (ms) | share of one core "
          "| RSS (MiB) | from files / anonymous (MiB) |")
    print("|---|---|---|---|---|---|---|")
    for n, mode, window, cpu, share, rss in idle_rows:
        print(f"| {n} runner{'s' if n > 1 else ''} | {mode} | {window:.0f} | {cpu * 1000:.0f} | {share:.4f}% "
              f"| {rss[0]:.1f} | {rss[1]:.1f} / {rss[2]:.1f} |")
    for n, mode, _, _, _, rss in idle_rows:
        if n == 10:
            ok = "met" if rss[0] < 8 else "MISSED"
            print(f"- {ok}: resident memory under 8 MiB with every collector on and 10 runners ({mode}): "
                  f"{rss[0]:.1f} MiB")
    print(f"load average {loadavg()} at the end")


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""scimgate benchmark: starts the demo legacy backend, scimgate in front of it, nginx and
scim2-server, drives load with bench/loadgen, and writes bench/results/{results.md,
results.json, latency.svg}. Run it through bench/run.sh, which builds and installs what it
needs. Standard library only."""

import argparse
import hashlib
import http.client
import json
import math
import os
import platform
import pwd
import re
import secrets
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
LOADGEN = BENCH / "loadgen" / "target" / "release" / "scimgate-loadgen"
SCIM2_SERVER = BENCH / ".venv" / "bin" / "scim2-server"
MIB = 1024 * 1024

SCIM_USER = "urn:ietf:params:scim:schemas:core:2.0:User"
PATCH_OP = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
SCIM_GROUP = "urn:ietf:params:scim:schemas:core:2.0:Group"

# Targets from the issue.
TARGET_S2_RATIO = 20.0
TARGET_ADDED_P99_MS = 0.5
TARGET_INITIAL = 1.3
TARGET_INCREMENTAL = 1.5
TARGET_RSS_MIB = 64.0
TARGET_PG_READ = 0.9  # PostgreSQL store vs SQLite store, GET and lookup throughput
TARGET_PG_WRITE = 0.75  # the same for POST and PATCH
TARGET_GROUP_PATCH = 1.3  # a group PATCH adding 100 members vs the native calls it makes
GROUP_MEMBERS = 100
MEMBER_CALLS_AT_ONCE = 8  # conf/demo.toml [groups] member_calls_at_once

# The variable holding the bench role's PostgreSQL password (run.sh sets it); the gateways of
# S6 are told its name with `[store] password_env`.
PG_PASSWORD_ENV = "SCIMGATE_BENCH_PG_PASSWORD"

PROFILES = {
    # seconds per measurement, warm-up, rounds of S1/S2 (median reported), rounds of S3,
    # users seeded for S3 lookups, users of the Entra cycle, idle connections; S6: rounds of
    # each SQLite/PostgreSQL pair (alternating which goes first), users of the two-instance cycle.
    # POST /Users of S3 runs a fixed count (not a duration), so that it adds the same number of
    # members to the backend whatever the speed: the demo backend's email lookup scans the team.
    "quick": dict(dur=2.0, warm=0.5, rounds=1, s3_rounds=1, seed=200, post=1000, users=1000,
                  idle=1000, s6_rounds=4, fleet_users=1000),
    "full": dict(dur=4.0, warm=0.5, rounds=3, s3_rounds=1, seed=1000, post=2000, users=10000,
                 idle=1000, s6_rounds=4, fleet_users=5000),
}
SAT_CONNS = 32  # closed-loop connections for saturation
RATE = 1000.0  # fixed rate of the latency measurements (req/s)
RATE_CONNS = 8
S2_CONNS = 4  # scim2-server: socketserver's listen backlog is 5; more only adds SYN retries
CYCLE_CONCURRENCY = 6  # Entra provisions with 4-8 parallel requests
CYCLE_CHUNKS = 10


def log(msg):
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", flush=True)


# ---------------------------------------------------------------- processes

class Procs:
    """Every process the bench starts, each in its own process group; stopped on exit."""

    def __init__(self, logdir):
        self.logdir = logdir
        self.procs = []

    def start(self, name, argv, env=None, stdout=None):
        out = stdout if stdout is not None else open(self.logdir / f"{name}.out", "wb")
        err = open(self.logdir / f"{name}.err", "wb")
        p = subprocess.Popen(
            argv, stdout=out, stderr=err, stdin=subprocess.DEVNULL,
            env={**os.environ, **(env or {})}, start_new_session=True)
        self.procs.append((name, p))
        return p

    def stop_all(self):
        for _name, p in reversed(self.procs):
            self.stop(p)
        self.procs.clear()

    def stop(self, p):
        """Stops one process (and its group): SIGINT, then SIGTERM, then SIGKILL."""
        if p.poll() is not None:
            return
        for sig, wait in ((signal.SIGINT, 3.0), (signal.SIGTERM, 2.0), (signal.SIGKILL, 2.0)):
            try:
                os.killpg(p.pid, sig)
            except ProcessLookupError:
                break
            try:
                p.wait(timeout=wait)
                break
            except subprocess.TimeoutExpired:
                continue


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, proc, timeout=20.0, name="process"):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{name} exited with {proc.returncode} before listening on {port}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"{name} is not listening on {port} after {timeout}s")


def call(port, method, path, headers=None, body=None, timeout=10):
    """One request; returns (status, parsed JSON or raw text)."""
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    data = json.dumps(body) if isinstance(body, (dict, list)) else body
    c.request(method, path, body=data, headers=headers or {})
    r = c.getresponse()
    raw = r.read()
    c.close()
    try:
        return r.status, json.loads(raw)
    except ValueError:
        return r.status, raw.decode("utf-8", "replace")


def proc_status(pid):
    """VmRSS, VmHWM in bytes."""
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            k, _, v = line.partition(":")
            if k in ("VmRSS", "VmHWM"):
                out[k] = int(v.split()[0]) * 1024
    return out


def children(pid):
    kids = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                stat = f.read()
            ppid = int(stat[stat.rfind(")") + 2:].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        if ppid == pid:
            kids.append(int(d))
    return kids


# ---------------------------------------------------------------- load

class Load:
    def __init__(self, tmp, prof):
        self.tmp = tmp
        self.prof = prof
        self.n_runs = 0

    def run(self, spec, timeout):
        self.n_runs += 1
        path = self.tmp / f"spec-{self.n_runs:03}.json"
        path.write_text(json.dumps(spec))
        r = subprocess.run([str(LOADGEN), str(path)], capture_output=True, timeout=timeout)
        if r.returncode != 0:
            raise RuntimeError(f"loadgen failed ({path}): {r.stderr.decode()[-2000:]}")
        return json.loads(r.stdout)

    def closed(self, port, steps, watch=(), conns=SAT_CONNS, **extra):
        spec = dict(addr=f"127.0.0.1:{port}", mode="closed", connections=conns,
                    duration_s=self.prof["dur"], warmup_s=self.prof["warm"],
                    steps=steps, watch_pids=list(watch), **extra)
        return self.run(spec, timeout=self.prof["dur"] + self.prof["warm"] + 60)

    def rate(self, port, steps, watch=(), rate=RATE, **extra):
        spec = dict(addr=f"127.0.0.1:{port}", mode="rate", rate=rate, connections=RATE_CONNS,
                    duration_s=self.prof["dur"], warmup_s=self.prof["warm"],
                    steps=steps, watch_pids=list(watch), **extra)
        return self.run(spec, timeout=self.prof["dur"] + self.prof["warm"] + 60)

    def count(self, port, steps, iterations, conns, watch=(), timeout=600, **extra):
        spec = dict(addr=f"127.0.0.1:{port}", mode="count", connections=conns,
                    iterations=iterations, steps=steps, watch_pids=list(watch), **extra)
        return self.run(spec, timeout=timeout)

    def parallel(self, specs, timeout):
        """Runs several loadgen specs at the same time (one process each); their reports in
        order, and the wall time from the first start to the last exit."""
        procs = []
        t0 = time.monotonic()
        try:
            for spec in specs:
                self.n_runs += 1
                path = self.tmp / f"spec-{self.n_runs:03}.json"
                path.write_text(json.dumps(spec))
                procs.append((path, subprocess.Popen([str(LOADGEN), str(path)],
                                                     stdout=subprocess.PIPE,
                                                     stderr=subprocess.PIPE)))
            out = []
            for path, p in procs:
                stdout, stderr = p.communicate(timeout=timeout)
                if p.returncode != 0:
                    raise RuntimeError(f"loadgen failed ({path}): {stderr.decode()[-2000:]}")
                out.append(json.loads(stdout))
            return out, time.monotonic() - t0
        finally:
            for _path, p in procs:
                if p.poll() is None:
                    p.kill()
                    p.wait()


def step(method, path, headers=(), body=None, ok=None, capture=None, name=None):
    s = {"method": method, "path": path, "headers": [list(h) for h in headers]}
    if body is not None:
        s["body"] = body if isinstance(body, str) else json.dumps(body)
    if ok:
        s["ok"] = ok
    if capture:
        s["capture"] = capture
    if name:
        s["name"] = name
    return s


def bearer(token):
    return ("Authorization", f"Bearer {token}")


JSON_CT = ("Content-Type", "application/json")
SCIM_CT = ("Content-Type", "application/scim+json")


def cpu_us_per_req(res, pids):
    by_pid = res["cpu"]["watched_cpu_s_by_pid"]
    total = sum(by_pid.get(str(p)) or 0.0 for p in pids)
    return total / max(res["requests"], 1) * 1e6


def median(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def rounds_note(runs, name, p):
    """Per-round values of a percentile (p99 only) and the generator's late starts."""
    if p != "p99" or len(runs[name]) < 2:
        return ""
    vals = ", ".join(f"{r['latency_ms'][p]:.2f}" for r in runs[name])
    late = sum(r["late_starts"] for r in runs[name])
    return f"; rounds {vals} ms; {late} starts >1 ms late"


def check_clean(name, res, min_ok=1):
    """Refuses a measurement whose requests failed: a ratio of errors means nothing."""
    bad = res["errors"] + res.get("capture_errors", 0)
    if bad or res["ok"] < min_ok:
        raise RuntimeError(
            f"{name}: {bad} failed of {res['requests']} "
            f"(statuses {res['error_statuses']}, io {res['io_errors']}, "
            f"capture {res.get('capture_errors', 0)})")


# ---------------------------------------------------------------- config

def variant_config(src, listen_port, backend_port, key_sha256, guard, store=None):
    """conf/demo.toml with this run's ports, a bench SCIM key, the admin session as the
    backend credential, and (if not `guard`) no [guard] or [team_admin] tables. `store`: the lines that
    replace `path = …` in [store] (default: a SQLite file next to the config)."""
    out, section, keys_done = [], "", False
    for line in src.splitlines():
        m = re.match(r"^\s*\[\[?\s*([A-Za-z0-9_.\-]+)\s*\]\]?\s*(#.*)?$", line)
        if m:
            section = m.group(1)
        # The team-admin page identifies callers as the guard does: it goes with the guard.
        if not guard and section.split(".")[0] in ("guard", "team_admin"):
            continue
        if section == "server" and re.match(r"^\s*listen\s*=", line):
            line = f'listen = ["127.0.0.1:{listen_port}"]'
        elif section == "backend" and re.match(r"^\s*address\s*=", line):
            line = f'address = "127.0.0.1:{backend_port}"'
        elif section == "backend.auth" and re.match(r"^\s*token_env\s*=", line):
            line = 'token_env = "SCIMGATE_BENCH_BACKEND_TOKEN"'
        elif section == "store" and re.match(r"^\s*path\s*=", line):
            line = "\n".join(store) if store else 'path = "scimgate.sqlite"'
        out.append(line)
        if m and section == "tenants" and not keys_done:
            out.append(f'keys = [{{ id = "bench", sha256 = "{key_sha256}" }}]')
            keys_done = True
    if not keys_done:
        raise RuntimeError("conf/demo.toml has no [[tenants]] table")
    return "\n".join(out) + "\n"


# ---------------------------------------------------------------- the run

class Bench:
    def __init__(self, args):
        self.args = args
        self.profile = "quick" if args.quick else "full"
        self.prof = dict(PROFILES[self.profile])
        if args.users:
            self.prof["users"] = args.users
            self.prof["fleet_users"] = args.users
        # tmpfs by default: fsync is free there, so writes measure CPU, not this VM's disk.
        parent = args.tmp or ("/dev/shm" if os.access("/dev/shm", os.W_OK) else None)
        self.tmp = Path(tempfile.mkdtemp(prefix="scimgate-bench-", dir=parent))
        self.procs = Procs(self.tmp)
        self.load = Load(self.tmp, self.prof)
        self.figures = []  # rows of the report
        self.raw = {}  # every loadgen result, by label
        self.memory = {}
        self.curves = {}
        self.skipped = {}  # scenario -> why it did not run
        self.started = time.time()

    # ---- setup

    def start_all(self):
        exe = self.args.scimgate
        self.password = "bench-" + secrets.token_hex(6)
        demo_token = "scimgate_bench_demo_" + secrets.token_hex(16)
        demo_port = free_port()
        log("starting the demo (legacy backend)")
        self.demo = self.procs.start("demo", [exe, "demo", "--listen", f"127.0.0.1:{demo_port}",
                                              "--token", demo_token, "--password", self.password,
                                              "--data", str(self.tmp / "demo")])
        deadline = time.time() + 30
        self.legacy = None
        while time.time() < deadline and self.legacy is None:
            text = (self.tmp / "demo.out").read_text(errors="replace")
            m = re.search(r"legacy service on 127\.0\.0\.1:(\d+)", text)
            if m:
                self.legacy = int(m.group(1))
            elif self.demo.poll() is not None:
                raise RuntimeError("scimgate demo exited: " + (self.tmp / "demo.err").read_text())
            else:
                time.sleep(0.05)
        if self.legacy is None:
            raise RuntimeError("scimgate demo did not print the legacy port")
        wait_port(self.legacy, self.demo, name="legacy backend")
        self.admin = self.login("admin@acme.test")
        self.carol = self.login("carol@acme.test")
        st, me = call(self.legacy, "GET", "/api/me", {"Authorization": f"Bearer {self.carol}"})
        self.carol_id = me["id"]

        self.scim_token = "scimgate_bench_" + secrets.token_hex(16)
        self.gw = {}
        for name, guard in (("scimgate", True), ("scimgate-noguard", False)):
            self.gw[name] = self.start_gateway(name, guard)
        self.gw_port, self.gw_proc = self.gw["scimgate"]
        self.ng_port, self.ng_proc = self.gw["scimgate-noguard"]
        st, _ = call(self.gw_port, "GET", "/scim/v2/Users?count=1",
                     {"Authorization": f"Bearer {self.scim_token}"})
        if st != 200:
            raise RuntimeError(f"scimgate SCIM answers {st} to the bench key")
        self.memory["scimgate_rss_start"] = proc_status(self.gw_proc.pid)["VmRSS"]

        self.start_nginx()
        self.start_scim2_server()

    def start_gateway(self, name, guard, store=None, env=None):
        """A `scimgate run` on conf/demo.toml with this run's ports and key (see
        variant_config), checked with `scimgate check` first; returns (port, process)."""
        exe = self.args.scimgate
        sha = hashlib.sha256(self.scim_token.encode()).hexdigest()
        src = (ROOT / "conf" / "demo.toml").read_text()
        env = {"SCIMGATE_BENCH_BACKEND_TOKEN": self.admin, **(env or {})}
        if self.args.quiet_logs:
            env["RUST_LOG"] = "warn"
        d = self.tmp / name
        d.mkdir()
        port = free_port()
        (d / "scimgate.toml").write_text(variant_config(src, port, self.legacy, sha, guard, store))
        chk = subprocess.run([exe, "check", "--config", str(d / "scimgate.toml")],
                             capture_output=True, timeout=30, env={**os.environ, **env})
        if chk.returncode != 0:
            raise RuntimeError(f"scimgate check failed for {name}: {chk.stderr.decode()}")
        log(f"starting {name} on {port}")
        p = self.procs.start(name, [exe, "run", "--config", str(d / "scimgate.toml")], env=env)
        wait_port(port, p, name=name)
        return port, p

    def login(self, email):
        st, body = call(self.legacy, "POST", "/api/login", {"Content-Type": "application/json"},
                        {"email": email, "password": self.password})
        if st != 200:
            raise RuntimeError(f"login {email}: {st} {body}")
        return body["session"]

    def start_nginx(self):
        d = self.tmp / "nginx"
        (d / "logs").mkdir(parents=True)
        self.nginx_port = free_port()
        user = ""
        if os.geteuid() == 0:
            user = f"user {pwd.getpwuid(os.geteuid()).pw_name};"
        access = "off" if self.args.quiet_logs else f"{d}/logs/access.log"
        conf = f"""
{user}
worker_processes 2;
daemon off;
master_process on;
pid {d}/nginx.pid;
error_log {d}/logs/error.log warn;
events {{ worker_connections 4096; }}
http {{
    access_log {access};
    client_body_temp_path {d}/client_body;
    proxy_temp_path {d}/proxy;
    fastcgi_temp_path {d}/fastcgi;
    uwsgi_temp_path {d}/uwsgi;
    scgi_temp_path {d}/scgi;
    keepalive_requests 1000000;
    keepalive_timeout 120s;
    upstream legacy {{
        server 127.0.0.1:{self.legacy};
        keepalive 64;
        keepalive_requests 1000000;
    }}
    server {{
        listen 127.0.0.1:{self.nginx_port};
        location / {{
            proxy_pass http://legacy;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host $host;
        }}
    }}
}}
"""
        (d / "nginx.conf").write_text(conf)
        log(f"starting nginx on {self.nginx_port}")
        self.nginx = self.procs.start("nginx", [self.args.nginx, "-p", str(d), "-c", str(d / "nginx.conf")])
        wait_port(self.nginx_port, self.nginx, name="nginx")
        time.sleep(0.2)
        self.nginx_pids = [self.nginx.pid] + children(self.nginx.pid)

    def start_scim2_server(self):
        self.s2_port = free_port()
        self.s2_token = "s2-" + secrets.token_hex(8)
        log(f"starting scim2-server on {self.s2_port}")
        self.s2srv = self.procs.start("scim2-server", [str(SCIM2_SERVER), "--port", str(self.s2_port),
                                                    "--bearer-token", self.s2_token])
        wait_port(self.s2_port, self.s2srv, name="scim2-server")

    # ---- reporting helpers

    def figure(self, scenario, name, value, unit, baseline_name, baseline, ratio=None,
               target=None, verdict=None, note=""):
        if ratio is None and value is not None and baseline:
            ratio = value / baseline
        self.figures.append(dict(scenario=scenario, figure=name, value=value, unit=unit,
                                 baseline=baseline_name, baseline_value=baseline, ratio=ratio,
                                 target=target, verdict=verdict, note=note))

    def keep(self, label, res):
        slim = {k: v for k, v in res.items() if k != "collected"}
        self.raw.setdefault(label, []).append(slim)

    # ---- S1: proxy overhead

    def s1(self):
        log("S1 proxy overhead: GET /api/me direct / scimgate / nginx")
        steps = [step("GET", "/api/me", [bearer(self.carol)])]
        targets = {
            "direct": (self.legacy, []),
            "scimgate": (self.gw_port, [self.gw_proc.pid]),
            "nginx": (self.nginx_port, self.nginx_pids),
        }
        sat, rate, cpu, cpu_rate, backend_cpu = {}, {}, {}, {}, {}
        names = list(targets)
        for r in range(self.prof["rounds"]):
            order = names[r % 3:] + names[:r % 3]
            for name in order:
                port, pids = targets[name]
                res = self.load.closed(port, steps, watch=pids + [self.demo.pid])
                check_clean(f"S1 saturation {name}", res)
                self.keep(f"s1.sat.{name}", res)
                sat.setdefault(name, []).append(res["throughput"])
                cpu.setdefault(name, []).append(cpu_us_per_req(res, pids) if pids else None)
                backend_cpu.setdefault(name, []).append(cpu_us_per_req(res, [self.demo.pid]))
            for name in order:
                port, pids = targets[name]
                res = self.load.rate(port, steps, watch=pids)
                check_clean(f"S1 rate {name}", res)
                self.keep(f"s1.rate.{name}", res)
                rate.setdefault(name, []).append(res)
                cpu_rate.setdefault(name, []).append(cpu_us_per_req(res, pids) if pids else None)
        S = "1. Proxy overhead (GET /api/me, logged-in session)"
        thr = {k: median(v) for k, v in sat.items()}
        self.figure(S, "throughput at saturation, direct to backend", thr["direct"], "req/s",
                    "itself", thr["direct"])
        self.figure(S, "throughput at saturation through scimgate", thr["scimgate"], "req/s",
                    "direct", thr["direct"])
        self.figure(S, "throughput at saturation through nginx", thr["nginx"], "req/s",
                    "direct", thr["direct"])
        self.figure(S, "throughput: scimgate vs nginx", thr["scimgate"], "req/s",
                    "nginx", thr["nginx"])
        lat = {k: {p: median([x["latency_ms"][p] for x in v]) for p in ("p50", "p90", "p99", "p999")}
               for k, v in rate.items()}
        for p in ("p50", "p99"):
            self.figure(S, f"latency {p} at {RATE:.0f} req/s, direct", lat["direct"][p], "ms",
                        "itself", lat["direct"][p], note=rounds_note(rate, "direct", p)[2:])
            for name in ("scimgate", "nginx"):
                added = lat[name][p] - lat["direct"][p]
                target = verdict = None
                if name == "scimgate" and p == "p99":
                    target = f"added ≤ {TARGET_ADDED_P99_MS} ms"
                    verdict = added <= TARGET_ADDED_P99_MS
                self.figure(S, f"latency {p} at {RATE:.0f} req/s through {name}", lat[name][p], "ms",
                            "direct", lat["direct"][p], target=target, verdict=verdict,
                            note=f"added {added:+.3f} ms" + rounds_note(rate, name, p))
        c = {k: median(v) for k, v in cpu.items() if k != "direct"}
        cr = {k: median(v) for k, v in cpu_rate.items() if k != "direct"}
        self.figure(S, "proxy CPU per request at saturation, nginx (all workers)", c["nginx"],
                    "µs/req", "itself", c["nginx"])
        self.figure(S, "proxy CPU per request at saturation, scimgate", c["scimgate"], "µs/req",
                    "nginx", c["nginx"], target="≤ nginx", verdict=c["scimgate"] <= c["nginx"])
        self.figure(S, f"proxy CPU per request at {RATE:.0f} req/s, nginx", cr["nginx"], "µs/req",
                    "itself", cr["nginx"])
        self.figure(S, f"proxy CPU per request at {RATE:.0f} req/s, scimgate", cr["scimgate"],
                    "µs/req", "nginx", cr["nginx"], target="≤ nginx",
                    verdict=cr["scimgate"] <= cr["nginx"])
        b = median(backend_cpu["direct"])
        self.figure(S, "backend CPU per request (demo process), for scale", b, "µs/req",
                    "itself", b)
        self.curves["1"] = rate

    # ---- S2: guard overhead

    def s2(self):
        log("S2 guard overhead: PATCH /api/users/{carol} guarded / unguarded / direct")
        steps = [step("PATCH", f"/api/users/{self.carol_id}", [bearer(self.carol), JSON_CT],
                      {"first_name": "x"})]
        targets = {
            "direct": (self.legacy, []),
            "guarded": (self.gw_port, [self.gw_proc.pid]),
            "unguarded": (self.ng_port, [self.ng_proc.pid]),
        }
        sat, cpu, rate = {}, {}, {}
        names = list(targets)
        # Find a rate the backend sustains for this write route: the lower of 1000 req/s
        # and half the direct saturation throughput.
        for r in range(self.prof["rounds"]):
            order = names[r % 3:] + names[:r % 3]
            for name in order:
                port, pids = targets[name]
                res = self.load.closed(port, steps, watch=pids)
                check_clean(f"S2 saturation {name}", res)
                self.keep(f"s2.sat.{name}", res)
                sat.setdefault(name, []).append(res["throughput"])
                cpu.setdefault(name, []).append(cpu_us_per_req(res, pids) if pids else None)
        thr = {k: median(v) for k, v in sat.items()}
        s2_rate = float(min(RATE, round(thr["direct"] / 2 / 50) * 50 or 50))
        self.s2_rate = s2_rate
        for r in range(self.prof["rounds"]):
            order = names[r % 3:] + names[:r % 3]
            for name in order:
                port, pids = targets[name]
                res = self.load.rate(port, steps, rate=s2_rate)
                check_clean(f"S2 rate {name}", res)
                self.keep(f"s2.rate.{name}", res)
                rate.setdefault(name, []).append(res)
        S = "2. Guard overhead (PATCH /api/users/{id} by carol, unmanaged → allowed)"
        self.figure(S, "throughput at saturation, scimgate without [guard]", thr["unguarded"],
                    "req/s", "itself", thr["unguarded"])
        self.figure(S, "throughput at saturation, scimgate with the demo guard", thr["guarded"],
                    "req/s", "no guard", thr["unguarded"])
        self.figure(S, "throughput at saturation, direct to backend (reference)", thr["direct"],
                    "req/s", "no guard", thr["unguarded"])
        lat = {k: {p: median([x["latency_ms"][p] for x in v]) for p in ("p50", "p99")}
               for k, v in rate.items()}
        for p in ("p50", "p99"):
            self.figure(S, f"latency {p} at {s2_rate:.0f} req/s, no guard", lat["unguarded"][p],
                        "ms", "itself", lat["unguarded"][p])
            self.figure(S, f"latency {p} at {s2_rate:.0f} req/s, guarded", lat["guarded"][p], "ms",
                        "no guard", lat["unguarded"][p],
                        note=f"guard adds {lat['guarded'][p] - lat['unguarded'][p]:+.3f} ms")
            self.figure(S, f"latency {p} at {s2_rate:.0f} req/s, direct (reference)",
                        lat["direct"][p], "ms", "no guard", lat["unguarded"][p])
        c = {k: median(v) for k, v in cpu.items() if k != "direct"}
        self.figure(S, "scimgate CPU per request at saturation, no guard", c["unguarded"],
                    "µs/req", "itself", c["unguarded"])
        self.figure(S, "scimgate CPU per request at saturation, guarded", c["guarded"], "µs/req",
                    "no guard", c["unguarded"])
        self.curves["2"] = rate

    # ---- S3: SCIM operations

    def scim_user(self, user, n_expr):
        return {"schemas": [SCIM_USER], "externalId": f"ext-{user}", "userName": user,
                "active": True, "displayName": f"Bench User{n_expr}", "title": "Engineer",
                "name": {"givenName": "Bench", "familyName": f"User{n_expr}"},
                "emails": [{"value": user, "type": "work", "primary": True}]}

    def native_user(self, email, n_expr):
        return {"email": email, "first_name": "Bench", "last_name": f"User{n_expr}",
                "display_name": f"Bench User{n_expr}", "title": "Engineer", "status": "active",
                "role": "member"}

    def s3(self):
        log("S3 SCIM operations: seeding")
        k = self.prof["seed"]
        scim_h = [bearer(self.scim_token), SCIM_CT]
        s2_h = [bearer(self.s2_token), SCIM_CT]
        adm_h = [bearer(self.admin), JSON_CT]
        seed_steps = lambda h, base: [step("POST", f"{base}/Users", h,
                                           json.dumps(self.scim_user("seed{n}@bench.test", "{n}")),
                                           ok=[201], capture={"id": "/id"})]
        res = self.load.count(self.gw_port, seed_steps(scim_h, "/scim/v2"), k, 4, collect="id")
        check_clean("S3 seed scimgate", res, k)
        ids = [str(i) for i in res["collected"]]
        res = self.load.count(self.s2_port, seed_steps(s2_h, "/v2"), k, S2_CONNS, collect="id")
        check_clean("S3 seed scim2-server", res, k)
        s2_ids = [str(i) for i in res["collected"]]
        seeds = [str(i) for i in range(k)]
        q = lambda user: "filter=" + "userName%20eq%20%22" + user + "%22"
        ops = {
            "GET /Users/{id}": {
                "scimgate": (self.gw_port, [step("GET", "/scim/v2/Users/{v}", scim_h)], ids),
                "native": (self.legacy, [step("GET", "/api/teams/acme/members/{v}", adm_h)], ids),
                "scim2-server": (self.s2_port, [step("GET", "/v2/Users/{v}", s2_h)], s2_ids),
            },
            "GET /Users?filter=userName eq": {
                "scimgate": (self.gw_port, [step("GET", "/scim/v2/Users?" + q("seed{v}%40bench.test"), scim_h)], seeds),
                "native": (self.legacy, [step("GET", "/api/teams/acme/members?email=seed{v}%40bench.test", adm_h)], seeds),
                "scim2-server": (self.s2_port, [step("GET", "/v2/Users?" + q("seed{v}%40bench.test"), s2_h)], seeds),
            },
            "POST /Users": {
                "scimgate": (self.gw_port, [step("POST", "/scim/v2/Users", scim_h, json.dumps(self.scim_user("post-g{n}@bench.test", "{n}")), ok=[201])], []),
                "native": (self.legacy, [step("POST", "/api/teams/acme/members", adm_h, json.dumps(self.native_user("post-n{n}@bench.test", "{n}")), ok=[201])], []),
                "scim2-server": (self.s2_port, [step("POST", "/v2/Users", s2_h, json.dumps(self.scim_user("post-s{n}@bench.test", "{n}")), ok=[201])], []),
            },
            "PATCH /Users/{id}": {
                "scimgate": (self.gw_port, [step("PATCH", "/scim/v2/Users/{v}", scim_h, json.dumps({"schemas": [PATCH_OP], "Operations": [{"op": "replace", "path": "displayName", "value": "Patched {n}"}]}))], ids),
                "native": (self.legacy, [step("PUT", "/api/teams/acme/members/{v}", adm_h, json.dumps({"display_name": "Patched {n}"}))], ids),
                "scim2-server": (self.s2_port, [step("PATCH", "/v2/Users/{v}", s2_h, json.dumps({"schemas": [PATCH_OP], "Operations": [{"op": "replace", "path": "displayName", "value": "Patched {n}"}]}))], s2_ids),
            },
        }
        S = "3. SCIM operations (throughput at saturation)"
        self.s3_table = {}
        start = 0
        for op, targets in ops.items():
            log(f"S3 {op}")
            thr = {}
            for r in range(self.prof["s3_rounds"]):
                for name, (port, steps, values) in targets.items():
                    conns = S2_CONNS if name == "scim2-server" else SAT_CONNS
                    pids = {"scimgate": [self.gw_proc.pid], "native": [self.demo.pid],
                            "scim2-server": [self.s2srv.pid]}[name]
                    start += 10_000_000
                    if op.startswith("POST"):
                        res = self.load.count(port, steps, self.prof["post"], conns, watch=pids,
                                              start=start)
                    else:
                        res = self.load.closed(port, steps, watch=pids, conns=conns,
                                               values=values, start=start)
                    check_clean(f"S3 {op} {name}", res)
                    self.keep(f"s3.{op}.{name}", res)
                    thr.setdefault(name, []).append(res)
            t = {k: median([x["throughput"] for x in v]) for k, v in thr.items()}
            p50 = {k: median([x["latency_ms"]["p50"] for x in v]) for k, v in thr.items()}
            self.s3_table[op] = {"throughput": t, "p50_ms": p50}
            self.figure(S, f"{op}: native backend call(s), direct", t["native"], "req/s",
                        "itself", t["native"])
            self.figure(S, f"{op}: through scimgate", t["scimgate"], "req/s", "native",
                        t["native"], note=f"p50 {p50['scimgate']:.2f} ms vs {p50['native']:.2f} ms")
            target = verdict = None
            if op.startswith("GET"):
                target = f"scimgate ≥ {TARGET_S2_RATIO:.0f}× scim2-server"
                verdict = t["scimgate"] >= TARGET_S2_RATIO * t["scim2-server"]
            self.figure(S, f"{op}: scim2-server (reference SCIM server)", t["scim2-server"],
                        "req/s", "scimgate", t["scimgate"],
                        note=f"scimgate ÷ scim2-server = {t['scimgate'] / t['scim2-server']:.1f}×",
                        target=target, verdict=verdict)

    # ---- S4: Entra cycles

    def s4(self):
        n = self.prof["users"]
        scim_h = [bearer(self.scim_token), SCIM_CT]
        adm_h = [bearer(self.admin), JSON_CT]
        q = lambda user: "/scim/v2/Users?filter=userName%20eq%20%22" + user + "%22"
        initial = {
            "native": (self.legacy, [
                step("GET", "/api/teams/acme/members?email=nat{n}%40entra.test", adm_h, name="lookup"),
                step("POST", "/api/teams/acme/members", adm_h,
                     json.dumps(self.native_user("nat{n}@entra.test", "{n}")), ok=[201], name="create")]),
            "scimgate": (self.gw_port, [
                step("GET", q("scim{n}%40entra.test"), scim_h, name="lookup"),
                step("POST", "/scim/v2/Users", scim_h,
                     json.dumps(self.scim_user("scim{n}@entra.test", "{n}")), ok=[201], name="create")]),
        }
        incremental = {
            "native": (self.legacy, [
                step("GET", "/api/teams/acme/members?email=nat{n}%40entra.test", adm_h,
                     capture={"id": "/members/0/id"}, name="lookup"),
                step("GET", "/api/teams/acme/members/{id}", adm_h, name="get")]),
            "scimgate": (self.gw_port, [
                step("GET", q("scim{n}%40entra.test"), scim_h, capture={"id": "/Resources/0/id"},
                     name="lookup"),
                step("GET", "/scim/v2/Users/{id}", scim_h, name="get")]),
        }
        S = f"4. Entra cycles ({n:,} users, concurrency {CYCLE_CONCURRENCY})"
        for cycle, targets, tgt in (("initial (lookup + create)", initial, TARGET_INITIAL),
                                    ("incremental (lookup + GET)", incremental, TARGET_INCREMENTAL)):
            # The users go in chunks, alternating which side goes first (ABBA...), so that
            # both sides meet the same backend table size and the same machine noise.
            secs, p50s = {"native": 0.0, "scimgate": 0.0}, {"native": {}, "scimgate": {}}
            log(f"S4 {cycle}: {n} users on each side, {CYCLE_CHUNKS} chunks")
            chunk = -(-n // CYCLE_CHUNKS)
            for c in range(CYCLE_CHUNKS):
                first, count = c * chunk, min(chunk, n - c * chunk)
                if count <= 0:
                    break
                order = ("native", "scimgate") if c % 2 == 0 else ("scimgate", "native")
                for name in order:
                    port, steps = targets[name]
                    pids = [self.gw_proc.pid] if name == "scimgate" else []
                    res = self.load.count(port, steps, count, CYCLE_CONCURRENCY, watch=pids,
                                          start=first, timeout=max(600, count * 0.1))
                    check_clean(f"S4 {cycle} {name} chunk {c}", res, count * 2)
                    self.keep(f"s4.{cycle.split()[0]}.{name}", res)
                    secs[name] += res["seconds"]
                    for k, v in res["per_step_ms"].items():
                        p50s[name].setdefault(k, []).append(v["p50"])
            steps_p50 = {name: ", ".join(f"{k} p50 {median(v):.2f} ms" for k, v in d.items())
                         for name, d in p50s.items()}
            self.figure(S, f"{cycle} cycle, native calls direct", secs["native"], "s", "itself",
                        secs["native"],
                        note=f"{secs['native'] / n * 1000:.2f} ms/user; {steps_p50['native']}")
            self.figure(S, f"{cycle} cycle through scimgate", secs["scimgate"], "s", "native",
                        secs["native"], target=f"≤ {tgt}× native",
                        verdict=secs["scimgate"] <= tgt * secs["native"],
                        note=f"{secs['scimgate'] / n * 1000:.2f} ms/user; {steps_p50['scimgate']}")
        self.memory["scimgate_rss_after_cycle"] = proc_status(self.gw_proc.pid)["VmRSS"]

    # ---- S5: memory

    def idle_rss(self, port, pids, conns):
        spec = dict(addr=f"127.0.0.1:{port}", mode="idle", connections=conns, hold_s=60,
                    steps=[step("GET", "/api/me", [bearer(self.carol)])])
        path = self.tmp / f"spec-idle-{port}.json"
        path.write_text(json.dumps(spec))
        p = subprocess.Popen([str(LOADGEN), str(path)], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            line = p.stdout.readline().decode().split()
            if not line or line[0] != "READY":
                raise RuntimeError(f"idle loadgen: {p.stderr.read().decode()[-1000:]}")
            ok = int(line[1])
            time.sleep(1.0)
            rss = sum(proc_status(pid)["VmRSS"] for pid in pids)
            p.communicate(input=b"", timeout=30)
        finally:
            if p.poll() is None:
                p.kill()
                p.wait()
        return rss, ok

    def s5(self):
        conns = self.prof["idle"]
        log(f"S5 memory: {conns} idle keep-alive connections")
        S = "5. Memory (RSS of the scimgate process)"
        m = self.memory
        rss_idle, ok = self.idle_rss(self.gw_port, [self.gw_proc.pid], conns)
        if ok < conns:
            raise RuntimeError(f"only {ok} of {conns} idle connections to scimgate worked")
        m["scimgate_rss_idle_conns"] = rss_idle
        self.nginx_pids = [self.nginx.pid] + children(self.nginx.pid)
        ng_before = sum(proc_status(pid)["VmRSS"] for pid in self.nginx_pids)
        ng_idle, ok2 = self.idle_rss(self.nginx_port, self.nginx_pids, conns)
        if ok2 < conns:
            raise RuntimeError(f"only {ok2} of {conns} idle connections to nginx worked")
        m["nginx_rss"] = ng_before
        m["nginx_rss_idle_conns"] = ng_idle
        m["scimgate_peak_rss"] = proc_status(self.gw_proc.pid)["VmHWM"]
        base = m["scimgate_rss_start"] / MIB
        users = self.prof["users"]
        self.figure(S, "RSS at start", base, "MiB", "itself", base)
        if "scimgate_rss_after_cycle" in m:
            self.figure(S, f"RSS after the Entra cycles ({users:,} users provisioned)",
                        m["scimgate_rss_after_cycle"] / MIB, "MiB", "at start", base)
        else:
            users = 0
        self.figure(S, f"RSS with {conns:,} idle keep-alive connections", rss_idle / MIB, "MiB",
                    "at start", base,
                    note=f"nginx (all processes): {ng_before / MIB:.1f} → {ng_idle / MIB:.1f} MiB")
        full = users >= 10000 and conns >= 1000
        self.figure(S, "peak RSS over the whole run (VmHWM)", m["scimgate_peak_rss"] / MIB, "MiB",
                    "at start", base, target=f"≤ {TARGET_RSS_MIB:.0f} MiB",
                    verdict=(m["scimgate_peak_rss"] / MIB <= TARGET_RSS_MIB) if full else None,
                    note="" if full else f"target needs 10,000 users; this run has {users:,}")

    # ---- S6: the PostgreSQL store, and two gateways over one database

    def psql(self, db, sql, timeout=60):
        """One statement through `psql` as the bench's PostgreSQL role; the unaligned output."""
        u = urllib.parse.urlsplit(self.args.pg)
        r = subprocess.run(
            ["psql", "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-h", u.hostname or "127.0.0.1",
             "-p", str(u.port or 5432), "-U", u.username or "scimgate", "-d", db, "-c", sql],
            capture_output=True, timeout=timeout,
            env={**os.environ, "PGPASSWORD": os.environ.get(PG_PASSWORD_ENV, "")})
        if r.returncode != 0:
            raise RuntimeError(f"psql {db}: {sql}: {r.stderr.decode().strip()}")
        return r.stdout.decode().strip()

    def pg_maintenance_db(self):
        return urllib.parse.urlsplit(self.args.pg).path.lstrip("/") or "postgres"

    def create_bench_db(self):
        name = self.args.pg_db or f"scimgate_bench_{secrets.token_hex(4)}"
        if not re.fullmatch(r"[a-z_][a-z0-9_]{0,62}", name):
            raise RuntimeError(f"--pg-db {name!r}: not a plain lower-case identifier")
        self.psql(self.pg_maintenance_db(), f"CREATE DATABASE {name}")
        self.pg_db = name
        log(f"S6 created database {name}")
        if self.args.pg_async_commit:
            # A diagnostic: commits stop waiting for the WAL flush, as SQLite on /dev/shm never
            # waits for a disk; what remains of the gap is CPU and round trips.
            self.psql(name, f"ALTER DATABASE {name} SET synchronous_commit = off")
            log(f"S6 {name}: synchronous_commit = off")
        return name

    def pg_backends(self, db):
        """The pids of the PostgreSQL server processes serving `db` (the gateways' pools)."""
        out = self.psql(db, "SELECT pid FROM pg_stat_activity "
                            f"WHERE datname = '{db}' AND pid <> pg_backend_pid()")
        return [int(x) for x in out.split()]

    def drop_bench_db(self):
        """Drops this run's database (WITH (FORCE): also when a gateway still holds it)."""
        name, self.pg_db = getattr(self, "pg_db", None), None
        if not name:
            return
        try:
            self.psql(self.pg_maintenance_db(), f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
            log(f"S6 dropped database {name}")
        except (RuntimeError, OSError, subprocess.SubprocessError) as e:
            log(f"S6 could not drop database {name}: {e}")

    def s6(self):
        if not self.args.pg:
            reason = self.args.pg_skip or "no PostgreSQL given (--pg)"
            self.skipped["s6"] = reason
            log(f"S6 SKIPPED: {reason}")
            return
        db = self.create_bench_db()
        started = []
        try:
            self.pg_server = self.psql(db, (
                "SELECT 'PostgreSQL ' || current_setting('server_version') || ', fsync ' || "
                "current_setting('fsync') || ', synchronous_commit ' || "
                "current_setting('synchronous_commit')"))
            u = urllib.parse.urlsplit(self.args.pg)
            url = f"postgres://{u.username or 'scimgate'}@{u.hostname}:{u.port or 5432}/{db}"
            pg_store = [f'url = "{url}"', f'password_env = "{PG_PASSWORD_ENV}"']
            env = {PG_PASSWORD_ENV: os.environ.get(PG_PASSWORD_ENV, "")}
            gws = {}
            for name, store in (("s6-sqlite", None), ("s6-pg-a", pg_store), ("s6-pg-b", pg_store)):
                gws[name] = self.start_gateway(name, True, store, env)
                started.append(gws[name][1])
            self.s6_ops(gws, db)
            self.s6_fleet(gws, db)
        finally:
            for p in started:
                self.procs.stop(p)
            self.drop_bench_db()

    def s6_ops(self, gws, db):
        """GET, lookup, POST and PATCH through one gateway on PostgreSQL vs one on SQLite."""
        k = self.prof["seed"]
        h = [bearer(self.scim_token), SCIM_CT]
        sides = {"sqlite": gws["s6-sqlite"], "postgres": gws["s6-pg-a"]}
        ids = {}
        for side, (port, _p) in sides.items():
            log(f"S6 seeding {k} users through scimgate on {side}")
            res = self.load.count(port, [step("POST", "/scim/v2/Users", h, json.dumps(
                self.scim_user(f"s6{side[0]}{{n}}@bench.test", "{n}")), ok=[201],
                capture={"id": "/id"})], k, 4, collect="id")
            check_clean(f"S6 seed {side}", res, k)
            ids[side] = [str(i) for i in res["collected"]]
        q = lambda user: "/scim/v2/Users?filter=userName%20eq%20%22" + user + "%22"
        patch = json.dumps({"schemas": [PATCH_OP], "Operations": [
            {"op": "replace", "path": "displayName", "value": "Patched {n}"}]})
        seeds = [str(i) for i in range(k)]
        ops = {
            "GET /Users/{id}": lambda s: ([step("GET", "/scim/v2/Users/{v}", h)], ids[s]),
            "GET /Users?filter=userName eq": lambda s: (
                [step("GET", q(f"s6{s[0]}{{v}}%40bench.test"), h)], seeds),
            "POST /Users": lambda s: ([step("POST", "/scim/v2/Users", h, json.dumps(
                self.scim_user(f"s6post-{s[0]}{{n}}@bench.test", "{n}")), ok=[201])], None),
            "PATCH /Users/{id}": lambda s: ([step("PATCH", "/scim/v2/Users/{v}", h, patch)],
                                            ids[s]),
        }
        S = "6. PostgreSQL store vs SQLite store (one scimgate each, throughput at saturation)"
        start = 0
        for op, make in ops.items():
            log(f"S6 {op}: SQLite vs PostgreSQL, {self.prof['s6_rounds']} round(s)")
            runs = {"sqlite": [], "postgres": []}
            for r in range(self.prof["s6_rounds"]):
                # Alternate which store goes first, so that neither always meets the backend
                # (and the machine) a little later than the other.
                order = ("sqlite", "postgres") if r % 2 == 0 else ("postgres", "sqlite")
                for side in order:
                    port, proc = sides[side]
                    steps, values = make(side)
                    start += 10_000_000
                    # PostgreSQL's own CPU (the server processes of gateway A's pool) is
                    # watched too: on 2 shared cores it is part of what the PostgreSQL side pays.
                    pg = self.pg_backends(db) if side == "postgres" else []
                    watch = [proc.pid] + pg
                    if values is None:
                        res = self.load.count(port, steps, self.prof["post"], SAT_CONNS,
                                              watch=watch, start=start)
                    else:
                        res = self.load.closed(port, steps, watch=watch, values=values,
                                               start=start)
                    check_clean(f"S6 {op} {side}", res)
                    res["pg_pids"] = pg
                    self.keep(f"s6.{op}.{side}", res)
                    runs[side].append(res)
            t = {k2: median([x["throughput"] for x in v]) for k2, v in runs.items()}
            p50 = {k2: median([x["latency_ms"]["p50"] for x in v]) for k2, v in runs.items()}
            cpu = {k2: median([cpu_us_per_req(x, [sides[k2][1].pid]) for x in v])
                   for k2, v in runs.items()}
            pg_cpu = median([cpu_us_per_req(x, x["pg_pids"]) for x in runs["postgres"]])
            rounds = ", ".join(f"{a['throughput'] / b['throughput']:.2f}"
                               for a, b in zip(runs["postgres"], runs["sqlite"]))
            write = op.startswith(("POST", "PATCH"))
            tgt = TARGET_PG_WRITE if write else TARGET_PG_READ
            self.figure(S, f"{op}: scimgate, SQLite store", t["sqlite"], "req/s", "itself",
                        t["sqlite"], note=f"p50 {p50['sqlite']:.2f} ms; "
                                          f"scimgate CPU {cpu['sqlite']:.0f} µs/req")
            self.figure(S, f"{op}: scimgate, PostgreSQL store", t["postgres"], "req/s",
                        "SQLite store", t["sqlite"], target=f"≥ {tgt}× SQLite",
                        verdict=t["postgres"] >= tgt * t["sqlite"],
                        note=f"p50 {p50['postgres']:.2f} ms; scimgate CPU "
                             f"{cpu['postgres']:.0f} µs/req + PostgreSQL server CPU "
                             f"{pg_cpu:.0f} µs/req; ratio by round {rounds}")

    def s6_fleet(self, gws, db):
        """The Entra initial cycle through two gateways over one PostgreSQL database, vs the
        same native calls, then a check that every user exists once."""
        n = self.prof["fleet_users"]
        half = CYCLE_CONCURRENCY // 2
        scim_h = [bearer(self.scim_token), SCIM_CT]
        adm_h = [bearer(self.admin), JSON_CT]
        q = lambda user: "/scim/v2/Users?filter=userName%20eq%20%22" + user + "%22"
        native = [step("GET", "/api/teams/acme/members?email=fnat{n}%40entra.test", adm_h,
                       name="lookup"),
                  step("POST", "/api/teams/acme/members", adm_h,
                       json.dumps(self.native_user("fnat{n}@entra.test", "{n}")), ok=[201],
                       name="create")]
        fleet = [step("GET", q("fleet{n}%40entra.test"), scim_h, name="lookup"),
                 step("POST", "/scim/v2/Users", scim_h,
                      json.dumps(self.scim_user("fleet{n}@entra.test", "{n}")), ok=[201],
                      name="create")]
        # Each side runs as two load generators of 3 connections (6 in all, as in S4), each
        # taking half of every chunk's users: the fleet's go to instance A and instance B,
        # the native ones both straight to the backend.
        sqlite = [step("GET", q("fsql{n}%40entra.test"), scim_h, name="lookup"),
                  step("POST", "/scim/v2/Users", scim_h,
                       json.dumps(self.scim_user("fsql{n}@entra.test", "{n}")), ok=[201],
                       name="create")]
        targets = {
            "native": [(self.legacy, native), (self.legacy, native)],
            "fleet": [(gws["s6-pg-a"][0], fleet), (gws["s6-pg-b"][0], fleet)],
            # For reference: the same shape against the one gateway on SQLite.
            "sqlite": [(gws["s6-sqlite"][0], sqlite), (gws["s6-sqlite"][0], sqlite)],
        }
        S = (f"6. Two scimgate instances over one PostgreSQL: Entra initial cycle "
             f"({n:,} users, concurrency {CYCLE_CONCURRENCY})")
        log(f"S6 fleet: initial cycle, {n} users per side, {CYCLE_CHUNKS} chunks, two instances")
        secs = {side: 0.0 for side in targets}
        failed, statuses = 0, {}
        p50s = {side: {} for side in targets}
        chunk = -(-n // CYCLE_CHUNKS)
        for c in range(CYCLE_CHUNKS):
            first, count = c * chunk, min(chunk, n - c * chunk)
            if count <= 0:
                break
            names = list(targets)
            order = names[c % 3:] + names[:c % 3]
            for side in order:
                parts = [(first, count // 2), (first + count // 2, count - count // 2)]
                specs = [dict(addr=f"127.0.0.1:{port}", mode="count", connections=half,
                              iterations=iters, steps=steps, start=begin, watch_pids=[])
                         for (port, steps), (begin, iters) in zip(targets[side], parts)]
                reports, wall = self.load.parallel(specs, timeout=max(600, count * 0.1))
                secs[side] += max(r["seconds"] for r in reports)
                for i, res in enumerate(reports):
                    self.keep(f"s6.fleet.{side}.{'ab'[i]}", res)
                    for k2, v in res["per_step_ms"].items():
                        p50s[side].setdefault(k2, []).append(v["p50"])
                    if side != "fleet":
                        check_clean(f"S6 fleet {side} chunk {c}", res, parts[i][1] * 2)
                    else:
                        failed += res["errors"] + res.get("capture_errors", 0)
                        for st, cnt in res["error_statuses"].items():
                            statuses[st] = statuses.get(st, 0) + cnt
                        for kind, cnt in res["io_errors"].items():
                            statuses[kind] = statuses.get(kind, 0) + cnt
        counts = self.backend_counts(re.compile(r"fleet(\d+)@entra\.test"))
        dups = sum(v - 1 for v in counts.values() if v > 1)
        missing = n - len([u for u in range(n) if counts.get(str(u))])
        store_rows, store_distinct, pending = self.psql(db, (
            "SELECT count(*) || '|' || count(DISTINCT external_id) || '|' || "
            "(SELECT count(*) FROM pending_creates) FROM users "
            "WHERE external_id LIKE 'ext-fleet%'")).split("|")
        store_dups = int(store_rows) - int(store_distinct)
        steps_p50 = {side: ", ".join(f"{k2} p50 {median(v):.2f} ms" for k2, v in d.items())
                     for side, d in p50s.items()}
        self.fleet_check = dict(users=n, failed_requests=failed, statuses=statuses,
                                backend_duplicates=dups, backend_missing=missing,
                                store_rows=int(store_rows), store_duplicates=store_dups,
                                pending_creates=int(pending))
        self.figure(S, "native calls direct (2 × 3 connections)", secs["native"], "s", "itself",
                    secs["native"],
                    note=f"{secs['native'] / n * 1000:.2f} ms/user; {steps_p50['native']}")
        self.figure(S, "through scimgate A + B on one PostgreSQL (3 connections each)",
                    secs["fleet"], "s", "native", secs["native"],
                    note=f"{secs['fleet'] / n * 1000:.2f} ms/user; {steps_p50['fleet']}")
        self.figure(S, "through one scimgate on SQLite (2 × 3 connections), for reference",
                    secs["sqlite"], "s", "native", secs["native"],
                    note=f"{secs['sqlite'] / n * 1000:.2f} ms/user; {steps_p50['sqlite']}")
        ok = failed == 0 and dups == 0 and missing == 0 and store_dups == 0 and int(pending) == 0
        self.figure(S, "failed requests in the cycle through A + B", failed, "", "expected", 0,
                    target="no error, no duplicate", verdict=ok,
                    note=(f"statuses {statuses}; " if statuses else "")
                    + f"backend: {n - missing:,} of {n:,} userNames present, {dups} duplicate(s); "
                      f"store: {store_rows} rows, {store_dups} duplicate externalId(s), "
                      f"{pending} pending create(s) left")

    def backend_counts(self, pattern):
        """How many backend members of team acme have each userName matching `pattern`
        (by its first group), from the demo's admin list API, page by page."""
        counts, page = {}, 1
        while True:
            st, body = call(self.legacy, "GET", f"/api/teams/acme/members?page={page}&per_page=200",
                            {"Authorization": f"Bearer {self.admin}"}, timeout=60)
            if st != 200:
                raise RuntimeError(f"backend member list page {page}: {st} {body}")
            for m in body["members"]:
                hit = pattern.fullmatch(m.get("email", ""))
                if hit:
                    counts[hit.group(1)] = counts.get(hit.group(1), 0) + 1
            if page * 200 >= body["total"] or not body["members"]:
                return counts
            page += 1

    # ---- output

    def write(self, outdir):
        outdir.mkdir(parents=True, exist_ok=True)
        meta = {
            "profile": self.profile,
            "settings": self.prof,
            "saturation_connections": SAT_CONNS,
            "rate": RATE,
            "rate_connections": RATE_CONNS,
            "scim2_server_connections": S2_CONNS,
            "cycle_concurrency": CYCLE_CONCURRENCY,
            "cycle_chunks": CYCLE_CHUNKS,
            "guard_rate": getattr(self, "s2_rate", None),
            "access_logs": not self.args.quiet_logs,
            "only": self.args.only or "all",
            "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
            "duration_s": round(time.time() - self.started, 1),
            "host": {"cpus": os.cpu_count(), "kernel": platform.release(),
                     "load_before": self.load_before, "load_after": os.getloadavg()},
            "scimgate_commit": git_rev(),
            "skipped": self.skipped,
            "pg_server": getattr(self, "pg_server", None),
            "pg_where": self.args.pg_where or None,
            "latency_plot": bool(self.curves),
            "nginx": nginx_version(self.args.nginx),
        }
        data = {"meta": meta, "figures": self.figures, "memory_bytes": self.memory,
                "fleet_check": getattr(self, "fleet_check", None),
                "s3": getattr(self, "s3_table", {}), "runs": self.raw}
        (outdir / "results.json").write_text(json.dumps(data, indent=1))
        (outdir / "results.md").write_text(markdown(meta, self.figures))
        if self.curves:
            (outdir / "latency.svg").write_text(svg(self.curves, meta))
        log(f"wrote {outdir}/results.md, results.json" + (", latency.svg" if self.curves else ""))

    # ---- S7: a group PATCH adding many members

    def s7(self):
        """One SCIM PATCH adding GROUP_MEMBERS members to a project, against the native calls
        the gateway makes for it, made by the same load generator with the same parallelism:
        the project read, its member list, one user read per new member (the existence check)
        and one member PUT each. Each round then removes the members again (not timed), and
        the two sides alternate which goes first."""
        log(f"S7 group PATCH: {GROUP_MEMBERS} members, scimgate vs the native calls")
        n = GROUP_MEMBERS
        scim_h = [bearer(self.scim_token), SCIM_CT]
        adm_h = [bearer(self.admin), JSON_CT]
        res = self.load.count(self.gw_port, [step(
            "POST", "/scim/v2/Users", scim_h,
            json.dumps(self.scim_user("grp{n}@bench.test", "{n}")), ok=[201],
            capture={"id": "/id"})], n, 4, collect="id")
        check_clean("S7 seed users", res, n)
        ids = [str(i) for i in res["collected"]]
        group = {"schemas": [SCIM_GROUP], "displayName": "bench-scim"}
        st, created = call(self.gw_port, "POST", "/scim/v2/Groups",
                           {"Authorization": f"Bearer {self.scim_token}",
                            "Content-Type": "application/scim+json"}, group)
        if st != 201:
            raise RuntimeError(f"S7: POST /Groups answered {st}: {created}")
        gid = created["id"]
        st, native = call(self.legacy, "POST", "/api/teams/acme/projects",
                          {"Authorization": f"Bearer {self.admin}",
                           "Content-Type": "application/json"}, {"name": "bench-native"})
        if st != 201:
            raise RuntimeError(f"S7: POST project answered {st}: {native}")
        pid = native["id"]
        members = [{"value": i} for i in ids]
        patch = lambda op: json.dumps({"schemas": [PATCH_OP], "Operations": [
            {"op": op, "path": "members", "value": members}]})
        project = f"/api/teams/acme/projects/{pid}"
        secs = {"scimgate": [], "native": []}
        for r in range(max(3, self.prof["rounds"] * 2)):
            order = ("native", "scimgate") if r % 2 == 0 else ("scimgate", "native")
            for name in order:
                if name == "scimgate":
                    res = self.load.count(self.gw_port, [step(
                        "PATCH", f"/scim/v2/Groups/{gid}", scim_h, patch("add"), ok=[204])],
                        1, 1, watch=[self.gw_proc.pid])
                    check_clean("S7 scimgate add", res, 1)
                    secs[name].append(res["seconds"])
                    res = self.load.count(self.gw_port, [step(
                        "PATCH", f"/scim/v2/Groups/{gid}", scim_h, patch("remove"), ok=[204])],
                        1, 1)
                    check_clean("S7 scimgate remove", res, 1)
                    continue
                total = 0.0
                for steps, count, conns in (
                        ([step("GET", project, adm_h), step("GET", project + "/members", adm_h)],
                         1, 1),
                        ([step("GET", "/api/teams/acme/members/{v}", adm_h)], n,
                         MEMBER_CALLS_AT_ONCE),
                        ([step("PUT", project + "/members/{v}", adm_h)], n,
                         MEMBER_CALLS_AT_ONCE)):
                    res = self.load.count(self.legacy, steps, count, conns, values=ids)
                    check_clean("S7 native", res, count)
                    total += res["seconds"]
                secs[name].append(total)
                res = self.load.count(self.legacy, [step("DELETE", project + "/members/{v}",
                                                         adm_h)], n, MEMBER_CALLS_AT_ONCE,
                                      values=ids)
                check_clean("S7 native remove", res, n)
        S = f"7. Group PATCH adding {n} members (demo projects, {MEMBER_CALLS_AT_ONCE} calls at once)"
        native_s, gw_s = median(secs["native"]), median(secs["scimgate"])
        self.figure(S, "the native calls it makes, direct", native_s * 1000, "ms", "itself",
                    native_s * 1000, note=f"{len(secs['native'])} rounds, median")
        self.figure(S, "one SCIM PATCH through scimgate", gw_s * 1000, "ms", "native",
                    native_s * 1000, target=f"≤ {TARGET_GROUP_PATCH}× native",
                    verdict=gw_s <= TARGET_GROUP_PATCH * native_s,
                    note=f"{len(secs['scimgate'])} rounds, median")

    def run(self):
        self.load_before = os.getloadavg()
        try:
            self.start_all()
            for name in ("s1", "s2", "s3", "s4", "s5", "s6", "s7"):
                if not self.args.only or name in self.args.only.split(","):
                    getattr(self, name)()
        finally:
            self.procs.stop_all()
            self.drop_bench_db()
        self.write(Path(self.args.out))
        failed = [f for f in self.figures if f["verdict"] is False]
        print(markdown_targets(self.figures))
        return failed


def render(path):
    """Rewrites results.md and latency.svg next to `path` from its data."""
    data = json.loads(path.read_text())
    runs = data["runs"]
    curves = {}
    for sc, prefix in (("1", "s1.rate."), ("2", "s2.rate.")):
        found = {k[len(prefix):]: v for k, v in runs.items() if k.startswith(prefix)}
        if found:
            curves[sc] = found
    (path.parent / "results.md").write_text(markdown(data["meta"], data["figures"]))
    if curves:
        (path.parent / "latency.svg").write_text(svg(curves, data["meta"]))
    log(f"rewrote {path.parent}/results.md" + (" and latency.svg" if curves else ""))


def git_rev():
    try:
        r = subprocess.run(["git", "-C", str(ROOT), "describe", "--always", "--dirty"],
                           capture_output=True, timeout=10)
        return r.stdout.decode().strip()
    except (OSError, subprocess.SubprocessError):
        return None


def nginx_version(exe):
    try:
        r = subprocess.run([exe, "-v"], capture_output=True, timeout=10)
        return r.stderr.decode().strip()
    except (OSError, subprocess.SubprocessError):
        return None


# ---------------------------------------------------------------- Markdown

def fmt(v, unit=""):
    if v is None:
        return "–"
    if unit in ("req/s",):
        return f"{v:,.0f}"
    if unit == "ms":
        return f"{v:.3f}"
    if unit in ("µs/req",):
        return f"{v:.1f}"
    if unit == "MiB":
        return f"{v:.1f}"
    if unit == "s":
        return f"{v:.2f}"
    return f"{v:.3g}"


def verdict_text(v):
    return {True: "**pass**", False: "**MISS**", None: ""}[v]


def markdown_targets(figures):
    rows = [f for f in figures if f["target"]]
    out = ["| Target | Figure | Value | Baseline | Ratio | Verdict |", "|---|---|---|---|---|---|"]
    for f in rows:
        out.append(f"| {f['target']} | {f['figure']} | {fmt(f['value'], f['unit'])} {f['unit']} "
                   f"| {f['baseline']}: {fmt(f['baseline_value'], f['unit'])} "
                   f"| {'–' if f['ratio'] is None else fmt(f['ratio']) + '×'} "
                   f"| {verdict_text(f['verdict']) or 'not judged'}"
                   f"{(' (' + f['note'] + ')') if f['note'] else ''} |")
    return "\n".join(out) + "\n"


def markdown(meta, figures):
    h = meta["host"]
    lines = [
        "# scimgate benchmark results",
        "",
        f"Profile **{meta['profile']}**, {meta['date']}, took {meta['duration_s']} s. "
        f"{h['cpus']} CPUs, load average before {h['load_before'][0]:.2f}, after "
        f"{h['load_after'][0]:.2f}. scimgate {meta['scimgate_commit']}, {meta['nginx']}. "
        + ("Logging as shipped: scimgate with its default `RUST_LOG`, nginx with `access_log` on."
           if meta["access_logs"] else
           "Quiet logs: scimgate `RUST_LOG=warn`, nginx `access_log off`."),
        "",
        "Every figure is compared with a baseline measured in the same run; **ratio = value ÷ baseline**. "
        "How each number is measured: `bench/README.md`.",
        "",
    ]
    if meta.get("pg_server"):
        where = f"; {meta['pg_where']}" if meta.get("pg_where") else ""
        lines += [f"S6 store database: {meta['pg_server']} (as seen by the bench database){where}.",
                  ""]
    lines += [
        "## Targets",
        "",
        markdown_targets(figures),
    ]
    for sc, why in (meta.get("skipped") or {}).items():
        lines += [f"**{sc.upper()} skipped**: {why}", ""]
    scenario = None
    for f in figures:
        if f["scenario"] != scenario:
            scenario = f["scenario"]
            lines += ["", f"## {scenario}", "",
                      "| Figure | Value | Baseline | Ratio | Target | Note |",
                      "|---|---:|---|---:|---|---|"]
        ratio = ("1 (baseline)" if f["baseline"] == "itself"
                 else "–" if f["ratio"] is None else f"{fmt(f['ratio'])}×")
        base = "" if f["baseline"] == "itself" else f"{f['baseline']}: {fmt(f['baseline_value'], f['unit'])}"
        target = f"{f['target']} {verdict_text(f['verdict'])}" if f["target"] else ""
        lines.append(f"| {f['figure']} | {fmt(f['value'], f['unit'])} {f['unit']} | {base} "
                     f"| {ratio} | {target} | {f['note']} |")
    lines += ["", "Latency curves: `latency.svg`.", ""] if meta.get("latency_plot", True) else [""]
    return "\n".join(lines)


# ---------------------------------------------------------------- SVG

def svg(curves, meta):
    """Latency by percentile for the fixed-rate runs of S1 and S2, drawn by hand."""
    panels = []
    if "1" in curves:
        panels.append((f"GET /api/me at {meta['rate']:.0f} req/s", curves["1"]))
    if "2" in curves:
        panels.append((f"guarded PATCH at {meta['guard_rate'] or 0:.0f} req/s", curves["2"]))
    colors = {"direct": "#555555", "scimgate": "#d62728", "nginx": "#1f77b4",
              "guarded": "#d62728", "unguarded": "#ff9896"}
    W, H, pad_l, pad_r, pad_t, pad_b = 460, 320, 60, 20, 40, 50
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W * max(len(panels), 1)}" height="{H}" '
           f'font-family="sans-serif" font-size="11">',
           f'<rect width="100%" height="100%" fill="white"/>']
    xs = lambda p: math.log10(1.0 / (1.0 - min(p, 99.99) / 100.0))  # 0 .. 4 ("nines")
    for i, (title, data) in enumerate(panels):
        ox = i * W
        pw, ph = W - pad_l - pad_r, H - pad_t - pad_b
        # One curve per target: the median run (by p99) of its rounds.
        series = {}
        for name, runs in data.items():
            runs = sorted(runs, key=lambda r: r["latency_ms"]["p99"])
            series[name] = [(p, v) for p, v in runs[len(runs) // 2]["latency_curve_ms"] if p < 100]
        vals = [v for s in series.values() for _, v in s if v > 0]
        # Log latency axis: the tail spans two or three decades.
        lo = 10 ** math.floor(math.log10(min(vals, default=0.1)))
        hi = 10 ** math.ceil(math.log10(max(vals, default=1.0) * 1.05))
        X = lambda p: ox + pad_l + xs(p) / 4.0 * pw
        Y = lambda v: pad_t + ph - (math.log10(max(v, lo)) - math.log10(lo)) / (math.log10(hi) - math.log10(lo)) * ph
        out.append(f'<text x="{ox + W / 2}" y="18" text-anchor="middle" font-size="13">{esc(title)}</text>')
        out.append(f'<rect x="{ox + pad_l}" y="{pad_t}" width="{pw}" height="{ph}" fill="none" stroke="#999"/>')
        for p, label in ((0, "0"), (90, "90"), (99, "99"), (99.9, "99.9"), (99.99, "99.99")):
            x = X(p)
            out.append(f'<line x1="{x:.1f}" y1="{pad_t}" x2="{x:.1f}" y2="{pad_t + ph}" stroke="#eee"/>')
            out.append(f'<text x="{x:.1f}" y="{pad_t + ph + 14}" text-anchor="middle">{label}</text>')
        out.append(f'<text x="{ox + pad_l + pw / 2}" y="{H - 12}" text-anchor="middle">percentile</text>')
        decade = lo
        while decade <= hi * 1.001:
            for m in (1, 2, 5):
                v = decade * m
                if v > hi * 1.001:
                    break
                y = Y(v)
                out.append(f'<line x1="{ox + pad_l}" y1="{y:.1f}" x2="{ox + pad_l + pw}" y2="{y:.1f}" stroke="#eee"/>')
                out.append(f'<text x="{ox + pad_l - 4}" y="{y + 4:.1f}" text-anchor="end">{v:g}</text>')
            decade *= 10
        out.append(f'<text x="{ox + 14}" y="{pad_t + ph / 2}" transform="rotate(-90 {ox + 14} {pad_t + ph / 2})" '
                   f'text-anchor="middle">latency (ms, from intended send time)</text>')
        for j, (name, pts) in enumerate(series.items()):
            c = colors.get(name, "#2ca02c")
            d = " ".join(f"{'M' if n == 0 else 'L'}{X(p):.1f},{Y(v):.1f}" for n, (p, v) in enumerate(pts))
            out.append(f'<path d="{d}" fill="none" stroke="{c}" stroke-width="2"/>')
            ly = pad_t + 14 + j * 14
            out.append(f'<line x1="{ox + pad_l + 8}" y1="{ly - 4}" x2="{ox + pad_l + 26}" y2="{ly - 4}" stroke="{c}" stroke-width="2"/>')
            out.append(f'<text x="{ox + pad_l + 30}" y="{ly}">{esc(name)}</text>')
    out.append("</svg>")
    return "\n".join(out) + "\n"


def esc(s):
    return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


# ---------------------------------------------------------------- main

def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--quick", action="store_true", help="short run (< 2 min)")
    ap.add_argument("--scimgate", help="the scimgate binary (required unless --render)")
    ap.add_argument("--nginx", default="nginx")
    ap.add_argument("--out", default=str(BENCH / "results"))
    ap.add_argument("--tmp", default=None,
                    help="parent of the run's temporary folder (default /dev/shm: no disk fsync cost)")
    ap.add_argument("--users", type=int, default=0, help="override the Entra cycle's user count")
    ap.add_argument("--quiet-logs", action="store_true",
                    help="scimgate RUST_LOG=warn and nginx access_log off")
    ap.add_argument("--keep-tmp", action="store_true")
    ap.add_argument("--only", default="",
                    help="comma-separated scenarios to run (s1,...,s7); default all")
    ap.add_argument("--pg", default="",
                    help="S6: a PostgreSQL URL of the bench role and its maintenance database "
                         "(postgres://USER@HOST:PORT/postgres); password in "
                         f"${PG_PASSWORD_ENV}; the run creates its own database and drops it")
    ap.add_argument("--pg-db", default="",
                    help="S6: the name of the database to create (default scimgate_bench_<random>)")
    ap.add_argument("--pg-skip", default="", help="S6: why PostgreSQL is not available (skips S6)")
    ap.add_argument("--pg-where", default="",
                    help="S6: where the PostgreSQL server keeps its data, for the results")
    ap.add_argument("--pg-async-commit", action="store_true",
                    help="S6 diagnostic: synchronous_commit = off on the bench database")
    ap.add_argument("--render", metavar="RESULTS_JSON",
                    help="only rewrite results.md and latency.svg from an earlier results.json")
    ap.add_argument("--scale", nargs="?", const="1000,10000,20000,100000", metavar="SIZES",
                    help="run only the scale profile (bench/scale.py) at these user counts")
    args = ap.parse_args()
    if args.scale:
        if not args.scimgate:
            ap.error("--scimgate is required")
        import scale
        scale.main(["--scimgate", args.scimgate, "--sizes", args.scale, "--out", args.out])
        return
    if args.render:
        render(Path(args.render))
        return
    if not args.scimgate:
        ap.error("--scimgate is required")
    bench = Bench(args)

    def on_signal(sig, _frame):
        raise SystemExit(f"stopped by signal {sig}")
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGHUP, on_signal)
    try:
        failed = bench.run()
    finally:
        bench.procs.stop_all()
        if not args.keep_tmp:
            import shutil
            shutil.rmtree(bench.tmp, ignore_errors=True)
        else:
            log(f"kept {bench.tmp}")
    log(f"done in {time.time() - bench.started:.0f} s; {len(failed)} target(s) missed")


if __name__ == "__main__":
    main()

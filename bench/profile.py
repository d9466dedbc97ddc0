#!/usr/bin/env python3
"""Profile one bench scenario: starts the same processes as bench.py, puts load on scimgate and
records it with `perf record` (CPU) or runs it under valgrind massif with idle connections
(memory). Writes a text report next to the data under bench/results/profile/.

  bench/.venv/bin/python bench/profile.py cpu --scenario proxy      # GET /api/me proxied
  bench/.venv/bin/python bench/profile.py cpu --scenario guard      # guarded PATCH
  bench/.venv/bin/python bench/profile.py cpu --scenario scim-get   # SCIM GET /Users/{id}
  bench/.venv/bin/python bench/profile.py cpu --scenario scim-filter
  bench/.venv/bin/python bench/profile.py cpu --scenario entra-initial   # lookup + POST /Users
  bench/.venv/bin/python bench/profile.py memory --connections 300  # heap per idle connection

Needs perf (Debian: linux-perf) or valgrind; run bench/run.sh --quick once first so that the
binaries and bench/.venv exist.
"""

import argparse
import hashlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench as B  # noqa: E402


class Args:
    quick = True
    tmp = None
    users = 0
    keep_tmp = False


def scenario_steps(b, name):
    if name == "proxy":
        return b.gw_port, [B.step("GET", "/api/me", [B.bearer(b.carol)])], []
    if name == "guard":
        return b.gw_port, [B.step("PATCH", f"/api/users/{b.carol_id}",
                                  [B.bearer(b.carol), B.JSON_CT], {"first_name": "x"})], []
    h = [B.bearer(b.scim_token), B.SCIM_CT]
    if name == "entra-initial":
        return b.gw_port, [
            B.step("GET", "/scim/v2/Users?filter=userName%20eq%20%22new{n}%40bench.test%22", h),
            B.step("POST", "/scim/v2/Users", h, json.dumps(b.scim_user("new{n}@bench.test", "{n}")),
                   ok=[201])], []
    seed = b.load.count(b.gw_port, [B.step("POST", "/scim/v2/Users", h,
                                           json.dumps(b.scim_user("prof{n}@bench.test", "{n}")),
                                           ok=[201], capture={"id": "/id"})],
                        200, 4, collect="id")
    ids = [str(i) for i in seed["collected"]]
    if name == "scim-get":
        return b.gw_port, [B.step("GET", "/scim/v2/Users/{v}", h)], ids
    if name == "scim-filter":
        return b.gw_port, [B.step(
            "GET", "/scim/v2/Users?filter=userName%20eq%20%22prof{v}%40bench.test%22", h)], \
            [str(i) for i in range(200)]
    raise SystemExit(f"unknown scenario {name}")


def cpu(b, a, outdir):
    port, steps, values = scenario_steps(b, a.scenario)
    data = outdir / f"perf-{a.scenario}.data"
    b.prof.update(dur=a.seconds + 1, warm=0.5)
    perf = subprocess.Popen(["perf", "record", "-F", "999", "--call-graph", "dwarf,16384",
                             "-p", str(b.gw_proc.pid), "-o", str(data), "--", "sleep",
                             str(a.seconds)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    res = b.load.closed(port, steps, watch=[b.gw_proc.pid], values=values,
                        conns=a.connections if a.connections < 300 else B.SAT_CONNS)
    perf.wait(timeout=120)
    us = B.cpu_us_per_req(res, [b.gw_proc.pid])
    header = (f"scenario {a.scenario}: {res['throughput']:.0f} req/s, scimgate CPU "
              f"{us:.1f} µs/request, errors {res['errors']}\n\n")
    reports = []
    for sort, extra in (("dso", ["-g", "none"]), ("symbol", ["-g", "none"]),
                        ("symbol", ["--children", "-g", "none"])):
        r = subprocess.run(["perf", "report", "-i", str(data), "--stdio", "--sort", sort,
                            "--percent-limit", "0.5", *(["--no-children"] if "--children" not in extra else []),
                            *extra], capture_output=True, timeout=300)
        reports.append(r.stdout.decode(errors="replace"))
    out = outdir / f"perf-{a.scenario}.txt"
    out.write_text(header + "\n\n".join(reports))
    print(header + f"report: {out}")


def memory(b, a, outdir):
    d = b.tmp / "massif"
    d.mkdir()
    port = B.free_port()
    sha = hashlib.sha256(b.scim_token.encode()).hexdigest()
    (d / "scimgate.toml").write_text(
        B.variant_config((B.ROOT / "conf" / "demo.toml").read_text(), port, b.legacy, sha, True))
    massif = outdir / "massif.out"
    p = b.procs.start("massif", ["valgrind", "--tool=massif", "--threshold=0.5",
                                 f"--massif-out-file={massif}", a.scimgate, "run", "--config",
                                 str(d / "scimgate.toml")],
                      env={"SCIMGATE_BENCH_BACKEND_TOKEN": b.admin, "RUST_LOG": "warn"})
    B.wait_port(port, p, timeout=120, name="scimgate under valgrind")
    time.sleep(2)
    spec = dict(addr=f"127.0.0.1:{port}", mode="idle", connections=a.connections, hold_s=120,
                timeout_s=60, steps=[B.step("GET", "/api/me", [B.bearer(b.carol)])])
    path = b.tmp / "idle.json"
    path.write_text(json.dumps(spec))
    q = subprocess.Popen([str(B.LOADGEN), str(path)], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    print(q.stdout.readline().decode().strip(), f"({a.connections} connections)")
    time.sleep(5)
    os.kill(p.pid, 2)
    p.wait(timeout=120)
    q.communicate(input=b"", timeout=30)
    r = subprocess.run(["ms_print", str(massif)], capture_output=True, timeout=120)
    out = outdir / "massif.txt"
    out.write_text(r.stdout.decode(errors="replace"))
    print(f"report: {out} (peak snapshot: divide by the connection count for bytes per connection)")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("what", choices=["cpu", "memory"])
    ap.add_argument("--scenario", default="proxy",
                    choices=["proxy", "guard", "scim-get", "scim-filter", "entra-initial"])
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--connections", type=int, default=300)
    ap.add_argument("--scimgate", default=str(B.ROOT / "target" / "release" / "scimgate"))
    ap.add_argument("--nginx", default="/usr/sbin/nginx")
    ap.add_argument("--quiet-logs", action="store_true")
    a = ap.parse_args()
    args = Args()
    args.scimgate, args.nginx, args.quiet_logs = a.scimgate, a.nginx, a.quiet_logs
    outdir = B.BENCH / "results" / "profile"
    outdir.mkdir(parents=True, exist_ok=True)
    b = B.Bench(args)
    try:
        b.start_all()
        (cpu if a.what == "cpu" else memory)(b, a, outdir)
    finally:
        b.procs.stop_all()
        import shutil
        shutil.rmtree(b.tmp, ignore_errors=True)


if __name__ == "__main__":
    main()

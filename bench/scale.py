#!/usr/bin/env python3
"""scimgate scale profile (issue 14): the demo legacy backend with scimgate in front, users
provisioned by an Entra initial cycle (lookup by userName, then create) up to each size (default
1,000 / 10,000 / 20,000 / 100,000), and at each size: an Entra incremental cycle over every user
(lookup, then GET), the p50 of every lookup the identity providers make (by id, userName,
externalId, work email), a deep `startIndex` page, expensive filters (answered or refused), and
the peak RSS while eight expensive requests run at once; at the largest size, the RSS a minute
after that burst. Writes bench/results/scale.{json,md}. Run through `bench/bench.py --scale` (or
directly). Standard library and the bench's load generator."""

import argparse
import http.client
import json
import os
import statistics
import sys
import threading
import time
import urllib.parse
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench  # noqa: E402  (the shared helpers: starting the demo, configs, ports)

SCIM_USER = "urn:ietf:params:scim:schemas:core:2.0:User"
CYCLE_CONNS = 8  # Entra provisions with 4-8 parallel requests
SAMPLES = 200  # lookups per kind and size
BURST = 8  # expensive requests at once
EXPENSIVE = 'title co "zz"'  # a backend attribute the backend cannot search: a scan of its list
STORE_ONLY = 'nickName eq "zz"'  # an attribute only the store holds: a walk over the store
TARGET_LOOKUP = 1.5  # p50 at the largest size over the smallest
TARGET_MS = 50.0  # expensive filters and the deep page at the largest size
TARGET_RSS_MIB = 64.0
TARGET_RSS_BACK = 1.10  # RSS a minute after the burst over the idle RSS
TARGET_CYCLE = 1.2  # cost per user at the largest size over the CYCLE_BASE run
CYCLE_BASE = 10_000


class Client:
    """One keep-alive connection to the gateway with the SCIM key."""

    def __init__(self, port, token):
        self.port, self.token = port, token
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)

    def request(self, method, path, body=None):
        headers = {"Authorization": f"Bearer {self.token}"}
        if body is not None:
            headers["Content-Type"] = "application/scim+json"
            body = json.dumps(body)
        for attempt in (0, 1):
            try:
                self.conn.request(method, path, body=body, headers=headers)
                r = self.conn.getresponse()
                raw = r.read()
                return r.status, raw
            except (http.client.HTTPException, OSError):
                self.conn.close()
                self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
                if attempt:
                    raise
        raise RuntimeError("unreachable")

    def timed(self, path):
        t = time.perf_counter()
        status, raw = self.request("GET", path)
        return (time.perf_counter() - t) * 1000.0, status, raw


def user_template():
    """The SCIM user `n` for the load generator, which puts the number in for `{n}`."""
    return json.dumps({
        "schemas": [SCIM_USER],
        "userName": "u{n}@scale.test",
        "externalId": "ext-{n}",
        "name": {"givenName": "Given{n}", "familyName": "Family{n}"},
        "displayName": "User {n}",
        "title": "Engineer",
        "emails": [{"type": "work", "value": "w{n}@scale.test", "primary": True}],
        "active": True,
    })


def by_user_name(n_expr):
    return quote(f'userName eq "u{n_expr}@scale.test"')


def cycle(b, port, steps, first, last, collect=None):
    """Runs an Entra cycle over users [first, last) with CYCLE_CONNS connections; the load
    generator's report (seconds, per-step p50s, collected values)."""
    extra = {"collect": collect} if collect else {}
    res = b.load.count(port, steps, last - first, CYCLE_CONNS, start=first,
                       timeout=max(600, (last - first) * 0.05), **extra)
    bench.check_clean(f"cycle over users {first}..{last}", res, (last - first) * len(steps))
    return res


def initial_cycle(b, port, token, first, last, ids):
    """Entra's initial cycle for users [first, last): a lookup that finds nobody, then the
    create. Fills `ids`; the seconds it took."""
    h = [bench.bearer(token), bench.SCIM_CT]
    steps = [bench.step("GET", by_user_name("{n}"), h, name="lookup"),
             bench.step("POST", "/scim/v2/Users", h, user_template(), ok=[201],
                        capture={"id": "/id"}, name="create")]
    res = cycle(b, port, steps, first, last, collect="id")
    for i, got in enumerate(res["collected"]):
        if got is None:
            raise RuntimeError(f"user {first + i}: created without an id")
        ids[first + i] = str(got)
    return res["seconds"]


def incremental_cycle(b, port, token, size):
    """Entra's incremental cycle over users [0, size): the lookup, then a GET of the user it
    found. The seconds it took."""
    h = [bench.bearer(token), bench.SCIM_CT]
    steps = [bench.step("GET", by_user_name("{n}"), h, capture={"id": "/Resources/0/id"},
                        name="lookup"),
             bench.step("GET", "/scim/v2/Users/{id}", h, name="get")]
    return cycle(b, port, steps, 0, size)["seconds"]


def quote(filter_text):
    """The search path for `filter_text`; a load generator placeholder (`{n}`) stays as is."""
    return "/scim/v2/Users?filter=" + urllib.parse.quote(filter_text, safe="{}")


def p50_of(client, paths, expect_total=None):
    times = []
    for path in paths:
        ms, status, raw = client.timed(path)
        if status != 200:
            raise RuntimeError(f"{path}: {status} {raw[:200]!r}")
        if expect_total is not None and json.loads(raw).get("totalResults") != expect_total:
            raise RuntimeError(f"{path}: {raw[:300]!r}")
        times.append(ms)
    return statistics.median(times)


def rss(pid):
    return bench.proc_status(pid)["VmRSS"] / bench.MIB


def burst_paths(size):
    """The expensive requests of a burst: gateway-evaluated filters over the backend and over
    the store, and a deep page of the largest size a client may ask for."""
    return [quote(EXPENSIVE), quote(STORE_ONLY),
            f"/scim/v2/Users?startIndex={max(1, size - 150)}&count=100"]


def burst(port, token, pid, size):
    """Peak RSS (sampled every 5 ms) while BURST expensive requests run at once, and their
    statuses."""
    peak, statuses = rss(pid), []
    paths = burst_paths(size)

    def one(path):
        statuses.append(Client(port, token).request("GET", path)[0])

    threads = [threading.Thread(target=one, args=(paths[k % len(paths)],))
               for k in range(BURST)]
    for t in threads:
        t.start()
    while any(t.is_alive() for t in threads):
        peak = max(peak, rss(pid))
        time.sleep(0.005)
    return peak, sorted(set(statuses))


def measure(client, port, token, pid, size, ids):
    step = max(1, size // SAMPLES)
    sample = [n for n in range(0, size, step)][:SAMPLES]
    row = {"users": size}
    row["id_ms"] = p50_of(client, [f"/scim/v2/Users/{ids[n]}" for n in sample])
    row["userName_ms"] = p50_of(client, [by_user_name(n) for n in sample], 1)
    row["externalId_ms"] = p50_of(
        client, [quote(f'externalId eq "ext-{n}"') for n in sample], 1)
    row["work_email_ms"] = p50_of(
        client, [quote(f'emails[type eq "work"].value eq "w{n}@scale.test"')
                 for n in sample], 1)
    row["deep_page_ms"] = p50_of(
        client, [f"/scim/v2/Users?startIndex={size - 9}&count=10"] * 20)
    for key, text in (("expensive", EXPENSIVE), ("store_only", STORE_ONLY)):
        times, statuses = [], set()
        for _ in range(10):
            ms, status, _ = client.timed(quote(text))
            times.append(ms)
            statuses.add(status)
        row[f"{key}_ms"] = statistics.median(times)
        row[f"{key}_status"] = sorted(statuses)
    row["rss_idle_mib"] = rss(pid)
    row["rss_peak_burst_mib"], row["burst_status"] = burst(port, token, pid, size)
    return row


def statuses(codes):
    return "/".join(map(str, codes))


def verdicts(meta, rows):
    """(target, figure, value, verdict) for each target the issue sets, where the run has the
    sizes it needs."""
    first, last = rows[0], rows[-1]
    out = []
    for kind in ("id", "userName", "externalId", "work_email"):
        ratio = last[f"{kind}_ms"] / first[f"{kind}_ms"]
        out.append((f"≤ {TARGET_LOOKUP}× the {first['users']:,}-user p50",
                    f"{kind} lookup p50 at {last['users']:,} users", f"{ratio:.2f}×",
                    ratio <= TARGET_LOOKUP))
    for key, what in (("expensive", f"`{EXPENSIVE}`"), ("store_only", f"`{STORE_ONLY}`"),
                      ("deep_page", "`startIndex` near the end")):
        ms = last[f"{key}_ms"]
        status = f" ({statuses(last[f'{key}_status'])})" if f"{key}_status" in last else ""
        out.append((f"≤ {TARGET_MS:.0f} ms", f"{what} at {last['users']:,} users",
                    f"{ms:.2f} ms{status}", ms <= TARGET_MS))
    out.append((f"≤ {TARGET_RSS_MIB:.0f} MiB", f"peak RSS, {BURST} expensive requests at once "
                f"({last['users']:,} users)", f"{last['rss_peak_burst_mib']:.1f} MiB",
                last["rss_peak_burst_mib"] <= TARGET_RSS_MIB))
    if "rss_after_minute_mib" in meta:
        back = meta["rss_after_minute_mib"] / last["rss_idle_mib"]
        out.append((f"≤ {TARGET_RSS_BACK:.2f}× idle", "RSS a minute after the burst",
                    f"{meta['rss_after_minute_mib']:.1f} MiB ({back:.2f}× idle "
                    f"{last['rss_idle_mib']:.1f} MiB)", back <= TARGET_RSS_BACK))
    base = next((r for r in rows if r["users"] == CYCLE_BASE), None)
    if base is not None and last["users"] > CYCLE_BASE:
        for key, what in (("initial_ms_per_user", "initial cycle (lookup + create)"),
                          ("incremental_ms_per_user", "incremental cycle (lookup + GET)")):
            ratio = last[key] / base[key]
            out.append((f"≤ {TARGET_CYCLE}× the {CYCLE_BASE:,}-user run",
                        f"Entra {what} per user at {last['users']:,} users",
                        f"{last[key]:.3f} ms ({ratio:.2f}× {base[key]:.3f} ms)",
                        ratio <= TARGET_CYCLE))
    return out


def markdown(meta, rows):
    out = ["# scimgate scale profile", "",
           f"{meta['when']}, scimgate {meta['rev']}, {meta['cpus']} CPUs, "
           f"load average at start {meta['load']:.2f}. On `scimgate demo` (SQLite store); users "
           f"provisioned by an Entra initial cycle (lookup by userName, then create; "
           f"{CYCLE_CONNS} connections) up to each size; at each size an Entra incremental cycle "
           f"over every user (lookup, then GET; {CYCLE_CONNS} connections), the p50 of {SAMPLES} "
           "sequential lookups of each kind (one keep-alive connection), expensive filters "
           f"`{EXPENSIVE}` (a scan of the backend's list) and `{STORE_ONLY}` (a walk over the "
           f"store), and the peak RSS sampled every 5 ms during {BURST} expensive requests at "
           "once (both filters and a 100-user page near the end, in turn).", "",
           "## Targets", "",
           "| Target | Figure | Value | Verdict |", "|---|---|---|---|"]
    for target, figure, value, ok in verdicts(meta, rows):
        out.append(f"| {target} | {figure} | {value} | {'pass' if ok else '**MISS**'} |")
    out += ["", "## By size", "",
            "| users | initial cycle /user | incremental cycle /user | id | userName | "
            "externalId | work email | deep page | backend scan (status) | store walk (status) | "
            "RSS idle | RSS peak, 8 expensive (statuses) |",
            "|---:|---:|---:|---:|---:|---:|---:|---:|---|---|---:|---:|"]
    for r in rows:
        out.append(
            f"| {r['users']:,} | {r['initial_ms_per_user']:.3f} ms | "
            f"{r['incremental_ms_per_user']:.3f} ms | {r['id_ms']:.2f} ms | "
            f"{r['userName_ms']:.2f} ms | {r['externalId_ms']:.2f} ms | "
            f"{r['work_email_ms']:.2f} ms | {r['deep_page_ms']:.2f} ms | "
            f"{r['expensive_ms']:.2f} ms ({statuses(r['expensive_status'])}) | "
            f"{r['store_only_ms']:.2f} ms ({statuses(r['store_only_status'])}) | "
            f"{r['rss_idle_mib']:.1f} MiB | {r['rss_peak_burst_mib']:.1f} MiB "
            f"({statuses(r['burst_status'])}) |")
    out += ["", "The initial cycle's cost per user at a size is the whole cycle from an empty "
            "directory up to that size, divided by the size; the incremental cycle's is one "
            "cycle over every user at that size."]
    return "\n".join(out) + "\n"


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--scimgate", required=True)
    ap.add_argument("--sizes", default="1000,10000,20000,100000")
    ap.add_argument("--out", default=str(bench.BENCH / "results"))
    ap.add_argument("--no-minute", action="store_true", help="skip the RSS a minute later")
    args = ap.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",")]
    if sizes != sorted(set(sizes)):
        ap.error("--sizes must grow")
    ns = argparse.Namespace(scimgate=args.scimgate, quick=True, users=0, tmp=None,
                            quiet_logs=True, keep_tmp=False, nginx="nginx")
    b = bench.Bench(ns)
    meta = {"when": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "rev": bench.git_rev(),
            "cpus": os.cpu_count(), "load": os.getloadavg()[0], "sizes": sizes}
    rows = []
    try:
        b.start_nginx = lambda: None
        b.start_scim2_server = lambda: None
        b.start_all()
        port, pid = b.gw_port, b.gw_proc.pid
        client = Client(port, b.scim_token)
        ids, made, initial_s = {}, 0, 0.0
        for size in sizes:
            bench.log(f"initial cycle: users {made}..{size}")
            initial_s += initial_cycle(b, port, b.scim_token, made, size, ids)
            made = size
            bench.log(f"incremental cycle over {size} users")
            incremental_s = incremental_cycle(b, port, b.scim_token, size)
            bench.log(f"measuring at {size} users")
            row = measure(client, port, b.scim_token, pid, size, ids)
            row["initial_ms_per_user"] = initial_s / size * 1000.0
            row["incremental_ms_per_user"] = incremental_s / size * 1000.0
            rows.append(row)
            bench.log(json.dumps(row))
        if not args.no_minute:
            time.sleep(60)
            meta["rss_after_minute_mib"] = rss(pid)
    finally:
        b.procs.stop_all()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "scale.json").write_text(json.dumps({"meta": meta, "rows": rows}, indent=2) + "\n")
    (out / "scale.md").write_text(markdown(meta, rows))
    print(markdown(meta, rows))


if __name__ == "__main__":
    main()

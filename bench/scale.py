#!/usr/bin/env python3
"""scimgate scale profile (issue 14): the demo legacy backend with scimgate in front, users
created through SCIM up to each size (default 1,000 / 20,000 / 100,000), and at each size the
p50 of every lookup the identity providers make (by id, userName, externalId, work email), a
deep `startIndex` page, an expensive filter (answered or refused), and the peak RSS while eight
expensive requests run at once; at the largest size, the RSS a minute after that burst. Writes
bench/results/scale.{json,md}. Run through `bench/bench.py --scale` (or directly). Standard
library only."""

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
CREATORS = 8  # parallel creates, as Entra provisions with 4-8 parallel requests
SAMPLES = 200  # lookups per kind and size
BURST = 8  # expensive requests at once
EXPENSIVE = 'title co "zz"'


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


def user(n):
    return {
        "schemas": [SCIM_USER],
        "userName": f"u{n:06d}@scale.test",
        "externalId": f"ext-{n:06d}",
        "name": {"givenName": f"Given{n}", "familyName": f"Family{n}"},
        "displayName": f"User {n}",
        "title": "Engineer",
        "emails": [{"type": "work", "value": f"w{n:06d}@scale.test", "primary": True}],
        "active": True,
    }


def create(port, token, first, last, ids):
    """Creates users [first, last) through SCIM with CREATORS connections."""
    lock = threading.Lock()
    failures = []

    def worker(k):
        c = Client(port, token)
        for n in range(first + k, last, CREATORS):
            status, raw = c.request("POST", "/scim/v2/Users", user(n))
            if status != 201:
                failures.append((n, status, raw[:200]))
                continue
            with lock:
                ids[n] = json.loads(raw)["id"]

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(CREATORS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if failures:
        raise RuntimeError(f"{len(failures)} creates failed, first: {failures[0]}")


def quote(filter_text):
    return "/scim/v2/Users?filter=" + urllib.parse.quote(filter_text)


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


def burst(port, token, pid):
    """Peak RSS (sampled every 5 ms) while BURST expensive requests run at once, and their
    statuses."""
    peak, statuses = rss(pid), []

    def one():
        statuses.append(Client(port, token).request("GET", quote(EXPENSIVE))[0])

    threads = [threading.Thread(target=one) for _ in range(BURST)]
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
    row["userName_ms"] = p50_of(
        client, [quote(f'userName eq "u{n:06d}@scale.test"') for n in sample], 1)
    row["externalId_ms"] = p50_of(
        client, [quote(f'externalId eq "ext-{n:06d}"') for n in sample], 1)
    row["work_email_ms"] = p50_of(
        client, [quote(f'emails[type eq "work"].value eq "w{n:06d}@scale.test"')
                 for n in sample], 1)
    row["deep_page_ms"] = p50_of(
        client, [f"/scim/v2/Users?startIndex={size - 9}&count=10"] * 20)
    times, statuses = [], set()
    for _ in range(10):
        ms, status, _ = client.timed(quote(EXPENSIVE))
        times.append(ms)
        statuses.add(status)
    row["expensive_ms"] = statistics.median(times)
    row["expensive_status"] = sorted(statuses)
    row["rss_idle_mib"] = rss(pid)
    row["rss_peak_burst_mib"], row["burst_status"] = burst(port, token, pid)
    return row


def markdown(meta, rows):
    out = ["# scimgate scale profile", "",
           f"{meta['when']}, scimgate {meta['rev']}, {meta['cpus']} CPUs, "
           f"load average at start {meta['load']}. Users created through SCIM on `scimgate demo`; "
           f"p50 of {SAMPLES} sequential lookups of each kind (one keep-alive connection); "
           f"expensive filter `{EXPENSIVE}`; peak RSS sampled every 5 ms during {BURST} expensive "
           "requests at once.", "",
           "| users | create/s | id | userName | externalId | work email | deep page | "
           "expensive (status) | RSS idle | RSS peak, 8 expensive |",
           "|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|"]
    for r in rows:
        out.append(
            f"| {r['users']:,} | {r['create_per_s']:.0f} | {r['id_ms']:.2f} ms | "
            f"{r['userName_ms']:.2f} ms | {r['externalId_ms']:.2f} ms | "
            f"{r['work_email_ms']:.2f} ms | {r['deep_page_ms']:.2f} ms | "
            f"{r['expensive_ms']:.2f} ms ({'/'.join(map(str, r['expensive_status']))}) | "
            f"{r['rss_idle_mib']:.1f} MiB | {r['rss_peak_burst_mib']:.1f} MiB |")
    first, last = rows[0], rows[-1]
    out += ["", f"Ratios, {last['users']:,} users over {first['users']:,} (target ≤ 1.5×):", ""]
    for kind in ("id", "userName", "externalId", "work_email"):
        ratio = last[f"{kind}_ms"] / first[f"{kind}_ms"]
        out.append(f"- {kind}: {ratio:.2f}×")
    if "rss_after_minute_mib" in meta:
        out += ["", f"RSS at {last['users']:,} users: idle {last['rss_idle_mib']:.1f} MiB, "
                f"peak {last['rss_peak_burst_mib']:.1f} MiB, a minute after the burst "
                f"{meta['rss_after_minute_mib']:.1f} MiB."]
    return "\n".join(out) + "\n"


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--scimgate", required=True)
    ap.add_argument("--sizes", default="1000,20000,100000")
    ap.add_argument("--out", default=str(bench.BENCH / "results"))
    ap.add_argument("--no-minute", action="store_true", help="skip the RSS a minute later")
    args = ap.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",")]
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
        ids, made = {}, 0
        for size in sizes:
            bench.log(f"creating users {made}..{size}")
            t = time.perf_counter()
            create(port, b.scim_token, made, size, ids)
            rate = (size - made) / (time.perf_counter() - t)
            made = size
            bench.log(f"measuring at {size} users")
            row = measure(client, port, b.scim_token, pid, size, ids)
            row["create_per_s"] = rate
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

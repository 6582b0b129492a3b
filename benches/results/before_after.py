#!/usr/bin/env python3
"""Prints a markdown table of the goal figures of the tandem rows in two `compare --json`
results (before, after), so that BENCHMARKS.md quotes no figure by hand.

usage: before_after.py BEFORE.json AFTER.json            (goal ratios, both modes)
       before_after.py --detail MODE BEFORE.json AFTER.json (MODE pinned|unpinned: RTT, CPU,
                                                            calls/s @64, stream, 1,000 connections)
"""
import json
import sys


def rows(path):
    d = json.load(open(path))
    return {(r["lib"], r["transport"], r["mode"]): r for r in d["rows"]}, d


def fig(rs, lib, t, mode):
    r = rs.get((lib, t, mode))
    if not r or "perf" not in r:
        return None
    p = r["perf"]
    tarpc = rs.get(("tarpc", t, mode), {}).get("perf")
    idle = r.get("idle_bytes_per_conn") or {}
    return {
        "rtt": p["floor_ratio"]["rtt_p50"],
        "rtt_us": p["rtt"]["p50_us"],
        "x_tarpc": p["pipelined"]["64"] / tarpc["pipelined"]["64"] if tarpc else None,
        "stream": p["floor_ratio"]["stream"],
        "allocs": p["allocs_per_call"],
        "idle": idle.get("10000", idle.get("1000")),
        "idle_at": "10k" if "10000" in idle else "1k",
    }


def cell(v, fmt):
    return "—" if v is None else fmt.format(v)


def detail(mode, before, after):
    (b, _), (a, _) = rows(before), rows(after)
    print("| row | RTT p50 µs | ×floor | CPU µs/call (×tarpc) | calls/s @64 (×tarpc) | stream GB/s (×floor bulk) | CPU s/GB | 1,000 conns calls/s (×tarpc) | p99 ms (×tarpc) |")
    print("|---|---|---|---|---|---|---|---|---|")

    def get(rs, lib, t, *path):
        v = rs.get((lib, t, mode))
        for k in path:
            if not isinstance(v, dict) or k not in v:
                return None
            v = v[k]
        return v

    def ratio(x, y):
        return None if x is None or not y else x / y

    def one(rs, lib, t, path, fmt, scale=1.0, rfmt="{:.2f}×"):
        v = get(rs, lib, t, *path)
        tv = get(rs, "tarpc", t, *path)
        r = ratio(v, tv)
        main = cell(v and v * scale, fmt)
        return main, (cell(r, rfmt) if r is not None else None)

    for lib in ["tandem-std", "tandem-smol"]:
        for t in ["tcp", "unix"]:
            if get(a, lib, t, "perf") is None or get(b, lib, t, "perf") is None:
                continue
            cols = []
            for path, fmt, scale, with_tarpc in [
                (("perf", "rtt", "p50_us"), "{:.1f}", 1.0, False),
                (("perf", "floor_ratio", "rtt_p50"), "{:.2f}×", 1.0, False),
                (("perf", "rtt", "cpu_us_per_call"), "{:.1f}", 1.0, True),
                (("perf", "pipelined", "64"), "{:.0f}k", 1e-3, True),
                (("perf", "stream_gbps"), "{:.2f}", 1.0, False),
                (("perf", "stream_cpu_s_per_gb"), "{:.2f}", 1.0, False),
                (("many", "calls_per_s"), "{:.1f}k", 1e-3, True),
                (("many", "p99_us"), "{:.0f}", 1e-3, True),
            ]:
                (x, xr), (y, yr) = one(b, lib, t, path, fmt, scale), one(a, lib, t, path, fmt, scale)
                c = f"{x} → {y}"
                if with_tarpc and xr and yr:
                    c += f" ({xr} → {yr})"
                if path[-1] == "stream_gbps":
                    fr = lambda rs: cell(get(rs, lib, t, "perf", "floor_ratio", "stream"), "{:.2f}×")
                    c += f" ({fr(b)} → {fr(a)})"
                cols.append(c)
            print(f"| {lib}/{t} | " + " | ".join(cols) + " |")


def main():
    if sys.argv[1] == "--detail":
        return detail(sys.argv[2], sys.argv[3], sys.argv[4])
    (b, _), (a, _) = rows(sys.argv[1]), rows(sys.argv[2])
    print("| row | mode | RTT p50 µs | RTT p50 ×floor (goal ≤ 1.15) | calls/s @64 ×tarpc (goal ≥ 3) | stream ×floor bulk (goal ≥ 0.90) | allocs/call | idle KiB/conn |")
    print("|---|---|---|---|---|---|---|---|")
    for lib in ["tandem-std", "tandem-smol"]:
        for t in ["tcp", "unix"]:
            for mode in ["unpinned", "pinned"]:
                x, y = fig(b, lib, t, mode), fig(a, lib, t, mode)
                if not x or not y:
                    continue
                def pair(k, f):
                    return cell(x[k], f) + " → " + cell(y[k], f)
                idle = (cell(x["idle"] and x["idle"] / 1024, "{:.1f}") + f" (@{x['idle_at']}) → "
                        + cell(y["idle"] and y["idle"] / 1024, "{:.1f}") + f" (@{y['idle_at']})")
                print(f"| {lib}/{t} | {mode} | {pair('rtt_us', '{:.1f}')} | {pair('rtt', '{:.2f}×')} | {pair('x_tarpc', '{:.2f}×')} | "
                      f"{pair('stream', '{:.2f}×')} | {pair('allocs', '{:.1f}')} | {idle} |")


main()

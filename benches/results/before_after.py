#!/usr/bin/env python3
"""Prints a markdown table of the goal figures of the tandem rows in two `compare --json`
results (before, after), so that BENCHMARKS.md quotes no figure by hand.

usage: before_after.py BEFORE.json AFTER.json
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


def main():
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

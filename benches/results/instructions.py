#!/usr/bin/env python3
"""Instructions per operation of `compare` binaries, counted by valgrind's cachegrind: a
before/after figure that the machine's load cannot move (timings and CPU time can, on a shared
2-core VM), for changes too small to see through the noise of a timed run.

usage: instructions.py [--lib LIB] [--transport T] [--mode M] BINARY...
       LIB: tandem-std | tandem-smol (default: both); T: tcp | unix (default unix);
       M: profile-pipelined (default) | profile-rtt | profile-stream

Each BINARY is a `compare` build (`cargo build --release -p tandem-benches --features peers
--bin compare`, copied aside before and after a change). Each run is the child mode of that
name for 5 s under cachegrind; the figure is the whole process's instructions over the
operations it completed (calls, or stream items), setup included (the same for every binary,
and a few percent of the total). Caveats: valgrind runs one thread at a time, so batching
differs from a real run, and it emulates a CPU without the SHA extensions (SHA-256 costs about
3x what it costs on hardware that has them). Compare binaries with each other, never with
timed figures.
"""
import json
import re
import subprocess
import sys
import tempfile


def count(binary, lib, transport, mode):
    with tempfile.NamedTemporaryFile(suffix=".cg") as out:
        p = subprocess.run(
            ["valgrind", "--tool=cachegrind", "--cache-sim=no", f"--cachegrind-out-file={out.name}",
             binary, "--child", lib, transport, mode],
            capture_output=True, text=True, check=True)
    refs = re.search(r"I\s+refs:\s+([\d,]+)", p.stderr)
    if not refs:
        sys.exit(f"{binary}: no instruction count in valgrind's output:\n{p.stderr}")
    ops = json.loads(p.stdout.strip().splitlines()[-1])["count"]
    return int(refs.group(1).replace(",", "")), ops


def main():
    args = sys.argv[1:]
    libs, transport, mode, bins = ["tandem-std", "tandem-smol"], "unix", "profile-pipelined", []
    while args:
        a = args.pop(0)
        if a == "--lib":
            libs = [args.pop(0)]
        elif a == "--transport":
            transport = args.pop(0)
        elif a == "--mode":
            mode = args.pop(0)
        elif a.startswith("--"):
            sys.exit(__doc__)
        else:
            bins.append(a)
    if not bins:
        sys.exit(__doc__)
    print(f"| binary | row | {mode} operations | instructions | per operation |")
    print("|---|---|---|---|---|")
    for lib in libs:
        for b in bins:
            ir, ops = count(b, lib, transport, mode)
            print(f"| {b} | {lib}/{transport} | {ops:,} | {ir:,} | {ir / max(ops, 1):,.0f} |")


if __name__ == "__main__":
    main()

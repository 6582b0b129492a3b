#!/usr/bin/env python3
"""Before/after of one benchmark row between binaries of `compare`, measured in the same minutes.

    python3 benches/results/ab.py OLD/compare,NEW/compare LIB TRANSPORT MODE ROUNDS
    python3 benches/results/ab.py /tmp/old-compare,target/release/compare tandem-std unix stream 3

Each round runs every binary once, alternating, as `taskset -c 1 BINARY --child LIB TRANSPORT
profile-MODE` (the profiling child: 5 s of one row, the whole process pinned to CPU 1; MODE is
rtt, pipelined, stream or many) and reads the count it prints. Prints, per binary, the median
rate over the rounds (each round's rate in parentheses) and the median CPU time (user + system
of the child, from getrusage) per operation: per call, or per item for `stream`.
"""
import json
import resource
import statistics
import subprocess
import sys

bins = sys.argv[1].split(',')
lib, transport, mode, rounds = sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5])
res = {b: [] for b in bins}
for _ in range(rounds):
    for b in bins:
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        out = subprocess.run(['taskset', '-c', '1', b, '--child', lib, transport, 'profile-' + mode],
                             capture_output=True, text=True, check=True).stdout
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
        j = json.loads([line for line in out.splitlines() if line.startswith('{')][-1])
        n, secs = j['count'], j.get('seconds', 5.0)
        res[b].append((n / secs, cpu / n * 1e6))
for b in bins:
    rates = [x[0] for x in res[b]]
    cpus = [x[1] for x in res[b]]
    print(f"{b:20} {lib}/{transport} {mode}: {statistics.median(rates) / 1e3:8.1f}k/s (",
          ' '.join(f"{x / 1e3:.1f}" for x in rates), f") cpu {statistics.median(cpus):.3f} us/op")

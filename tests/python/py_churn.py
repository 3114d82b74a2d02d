"""Worker churn with the real prometheus_client, each exit followed by
`prometheus-multiproc mark-dead --compact PID`.

Usage: py_churn.py DIR N BIN OUT_JSON

Imports prometheus_client once (with PROMETHEUS_MULTIPROC_DIR=DIR), then
forks N workers one after another; worker i increments a counter by
non-integer amounts and observes a histogram, then exits; the parent waits
for it and runs BIN mark-dead --dir DIR --compact PID. Writes to OUT_JSON
the exact totals (math.fsum, correctly rounded) after each worker, as
repr() strings: {"eur": [...], "usd": [...], "lat_sum": [...]} (index k =
after k workers), so a reader can check every scrape against them.
"""
import json
import math
import os
import subprocess
import sys


def amounts(i):
    return 0.1 * (i % 7 + 1), i * 1e-3 + 0.01, (i % 13) * 0.037


def main():
    d, n, binary, out = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
    os.environ['PROMETHEUS_MULTIPROC_DIR'] = d
    from prometheus_client import Counter, Histogram
    paid = Counter('churn_paid', 'Paid.', ['cur'])
    lat = Histogram('churn_latency_seconds', 'Latency.')
    eur, usd, lsum = [], [], []
    totals = {'eur': ['0.0'], 'usd': ['0.0'], 'lat_sum': ['0.0']}
    for i in range(n):
        a, b, c = amounts(i)
        pid = os.fork()
        if pid == 0:
            try:
                paid.labels('eur').inc(a)
                paid.labels('usd').inc(b)
                lat.observe(c)
            finally:
                os._exit(0)
        _, status = os.waitpid(pid, 0)
        if status != 0:
            sys.exit('worker %d failed: %d' % (i, status))
        subprocess.run([binary, 'mark-dead', '--dir', d, '--compact', str(pid)],
                       check=True, stdout=subprocess.DEVNULL)
        eur.append(a)
        usd.append(b)
        lsum.append(c)
        totals['eur'].append(repr(math.fsum(eur)))
        totals['usd'].append(repr(math.fsum(usd)))
        totals['lat_sum'].append(repr(math.fsum(lsum)))
    with open(out, 'w') as f:
        json.dump(totals, f)


if __name__ == '__main__':
    main()

"""Write multiprocess metric files with the real prometheus_client.

Usage: py_write.py DIR SCENARIO [WORKERS]

Forks WORKERS child processes (default: 3 for "all", 2 otherwise); each sets
PROMETHEUS_MULTIPROC_DIR=DIR before importing prometheus_client and writes the
metrics of SCENARIO with values that depend only on its index. Children run
one after another, so the `mostrecent` gauges deterministically end up with
the last worker's values. The parent never imports prometheus_client.

Scenarios:
  all     every metric type, all ten gauge modes, counters with and without
          labels and with/without a `_total` suffix, default and custom
          histogram buckets (tiny and huge bounds), summaries, label values
          with quotes, backslashes, newlines, tabs, non-ASCII and emoji, help
          text with a backslash and a newline.
  simple  one counter, one livesum gauge, one histogram, one summary.
  floats  gauges (mode "all") holding 1e20, 1.5e-07, -0.0, +Inf, -Inf, NaN...

Prints nothing on success; exits non-zero if any child fails.
"""
import os
import sys
import traceback

GAUGE_MODES = ['all', 'liveall', 'min', 'livemin', 'max', 'livemax',
               'sum', 'livesum', 'mostrecent', 'livemostrecent']

# Label values that need escaping or are outside ASCII.
WEIRD_LABEL_VALUES = ['plain', 'quote"d', 'back\\slash', 'new\nline', 'tab\there',
                      'caf\u00e9', '\u4e2d\u6587', 'smile \U0001F600', '']


def scenario_all(i):
    from prometheus_client import Counter, Gauge, Histogram, Summary
    k = i + 1

    requests = Counter('mp_requests', 'Requests handled.', ['method', 'path'])
    requests.labels('GET', '/').inc(k)
    requests.labels('POST', '/api').inc(k * 0.5)
    requests.labels(method='DELETE', path='/x/"y"').inc(0.1 * k)

    errors = Counter('mp_errors_total', 'Errors seen.')  # _total suffix given
    errors.inc(2 * k)

    sent = Counter('mp_bytes_sent', 'Bytes\\sent\nover the wire.')  # backslash + newline in help
    sent.inc(1.5 * k)

    weird = Counter('mp_weird_labels', 'Caf\u00e9 \u2713 labels with odd values.', ['value'])
    for n, v in enumerate(WEIRD_LABEL_VALUES):
        weird.labels(v).inc(k + n)

    # Label names given out of order: keys must still come out sorted.
    ordered = Counter('mp_label_order', 'Label names out of order.', ['zeta', 'alpha', 'mid'])
    ordered.labels('z', 'a', 'm').inc(k)

    for mode in GAUGE_MODES:
        g = Gauge(f'mp_gauge_{mode}', f'Gauge in {mode} mode.', ['shard'], multiprocess_mode=mode)
        g.labels('a').set(10 * k + 0.25)          # increasing with i
        g.labels('b').set(100 - 7 * i)            # decreasing with i
        g.labels('c').set(-0.1 * k)               # negative, inexact
        unlabeled = Gauge(f'mp_gauge_{mode}_unlabeled', f'Unlabeled {mode} gauge.',
                          multiprocess_mode=mode)
        if mode.endswith('mostrecent'):
            unlabeled.set(k * 1000)               # inc/dec are not allowed here
        else:
            unlabeled.inc(k * 3)
            unlabeled.dec(0.5)

    latency = Histogram('mp_latency_seconds', 'Latency (default buckets).', ['route'])
    for route in ('/', '/api'):
        for v in (0.003 * k, 0.2 * k, 3 * k, 20 * k):  # the last lands in +Inf
            latency.labels(route).observe(v)

    sizes = Histogram('mp_sizes', 'Custom buckets, tiny and huge bounds.',
                      buckets=(1e-05, 0.0001, 0.5, 1, 1e7, 12345678.9))
    for v in (1e-06 * k, 5e-05, 0.3, 2, 5e6 * k, 1.2e7, 1e9):
        sizes.observe(v)

    plain = Histogram('mp_plain_hist', 'Unlabeled default-bucket histogram.')
    plain.observe(0.05 * k)

    payload = Summary('mp_payload_bytes', 'Payload sizes.', ['kind'])
    payload.labels('json').observe(100 * k)
    payload.labels('json').observe(1.5)
    payload.labels('\u00e9\U0001F600').observe(k)

    Summary('mp_summary_plain', 'Unlabeled summary.').observe(0.25 * k)


def scenario_simple(i):
    from prometheus_client import Counter, Gauge, Histogram, Summary
    k = i + 1
    Counter('simple_requests', 'Requests.', ['code']).labels('200').inc(k)
    Gauge('simple_inflight', 'In flight.', multiprocess_mode='livesum').set(k)
    Histogram('simple_latency_seconds', 'Latency.').observe(0.1 * k)
    Summary('simple_size_bytes', 'Sizes.').observe(10 * k)


def scenario_floats(i):
    from prometheus_client import Gauge
    k = i + 1
    g = Gauge('floats', 'Special float values.', ['kind'], multiprocess_mode='all')
    for kind, v in [('int', 42), ('big', 1e20 * k), ('tiny', 1.5e-07 * k), ('neg_zero', -0.0),
                    ('inexact', 0.1 + 0.2), ('max', sys.float_info.max),
                    ('min_subnormal', 5e-324), ('pos_inf', float('inf')),
                    ('neg_inf', float('-inf')), ('nan', float('nan'))]:
        g.labels(kind).set(v)
    s = Gauge('floats_sum', 'Sums of inexact values.', multiprocess_mode='sum')
    s.set(0.1 * k)


SCENARIOS = {'all': scenario_all, 'simple': scenario_simple, 'floats': scenario_floats}


def main():
    if len(sys.argv) not in (3, 4) or sys.argv[2] not in SCENARIOS:
        sys.exit(f'usage: {sys.argv[0]} DIR {{{"|".join(SCENARIOS)}}} [WORKERS]')
    path, scenario = sys.argv[1], sys.argv[2]
    workers = int(sys.argv[3]) if len(sys.argv) == 4 else (3 if scenario == 'all' else 2)
    if not os.path.isdir(path):
        sys.exit(f'{path}: not a directory')
    if 'prometheus_client' in sys.modules:
        sys.exit('prometheus_client must not be imported in the parent')
    os.environ['PROMETHEUS_MULTIPROC_DIR'] = path
    os.environ.pop('prometheus_multiproc_dir', None)

    failed = []
    for i in range(workers):
        pid = os.fork()
        if pid == 0:
            code = 0
            try:
                SCENARIOS[scenario](i)
            except BaseException:
                traceback.print_exc()
                code = 1
            finally:
                sys.stderr.flush()
                os._exit(code)
        _, status = os.waitpid(pid, 0)
        code = os.waitstatus_to_exitcode(status)
        if code != 0:
            failed.append((i, pid, code))
    for i, pid, code in failed:
        print(f'worker {i} (pid {pid}) failed with status {code}', file=sys.stderr)
    sys.exit(1 if failed else 0)


if __name__ == '__main__':
    main()

"""Write multiprocess files with UTF-8 metric and label names, with the real prometheus_client.

Usage: py_write_utf8.py DIR SCENARIO [WORKERS]

Runs py_write.py's forking harness (WORKERS children, one after another,
default 2) with these scenarios:
  counters  counters only (one file kind), created in byte order of their
            names, each with one label set: names with dots, a leading
            digit, non-ASCII, a colon; label names with dots, non-ASCII, a
            leading digit, a colon.
  gauges    the same shape with livesum gauges.

The metrics of each scenario appear in one file per worker, in name order,
so prometheus_client's output order is the families' name order.
"""
import py_write

LABELS = ['rou.te', 'sta:tus', 'ü', '1x']
VALUES = ['/a', 'q"uote', 'back\\slash\nnl', 'caf\u00e9']

# In byte order (digits < upper case < lower case < non-ASCII), the order
# the Rust collector sorts families in.
NAMES = ['1st.requests', 'Up.time', 'http.requests', 'lat:ency', 'legacy_name', 'temp.\u00b0c']


def scenario_counters(i):
    from prometheus_client import Counter
    k = i + 1
    for n, name in enumerate(NAMES):
        c = Counter(name, f'Help of {name} with "quotes" and \\ and\nnewline.', LABELS)
        c.labels(*VALUES).inc(k + n)


def scenario_gauges(i):
    from prometheus_client import Gauge
    k = i + 1
    for n, name in enumerate(NAMES):
        g = Gauge(name, f'Gauge {name}.', LABELS, multiprocess_mode='livesum')
        g.labels(*VALUES).set(k * 10 + n)


py_write.SCENARIOS.update({'counters': scenario_counters, 'gauges': scenario_gauges})

if __name__ == '__main__':
    py_write.main()

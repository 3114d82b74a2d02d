"""What prometheus_client's WSGI app would serve for ?name[]=... over a multiprocess directory, without its multiprocess gap.

Usage: py_wsgi_scrape.py DIR QUERY_STRING
Reads the names as make_wsgi_app does (urllib's parse_qs, 'name[]'), then
cuts every family of prometheus_client's own MultiProcessCollector with
its own Metric._restricted_metric and encodes the result with its
generate_latest. (Its restricted registry itself finds no family in
multiprocess mode and serves an empty body; that part is not copied.)
Writes "restricted" or "all" on the first line, then the body.
"""
import sys
from urllib.parse import parse_qs

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector

directory, query = sys.argv[1], sys.argv[2]
params = parse_qs(query)
collector = MultiProcessCollector(None, path=directory)


class Restricted:
    def __init__(self, names):
        self.names = set(names)

    def collect(self):
        for metric in collector.collect():
            cut = metric._restricted_metric(self.names)
            if cut:
                yield cut


registry = CollectorRegistry()
if 'name[]' in params:
    registry.register(Restricted(params['name[]']))
    mode = b'restricted'
else:
    registry.register(collector)
    mode = b'all'
sys.stdout.buffer.write(mode + b'\n' + generate_latest(registry))

"""Answer Accept headers as prometheus_client 0.26 does (choose_encoder).

Usage: py_negotiate.py families < {"headers": [...], "families": [...]}
       py_negotiate.py dir DIR  < {"headers": [...], "names": [...] or null}

For each header (null: no header) prints, in a JSON list, what
prometheus_client's HTTP handlers do with it: {"content_type", "body"} from
`choose_encoder(header)`, or {"error": "..."} when choose_encoder raises
(its WSGI server then answers 500).

families  the registry holds one collector yielding the given families:
          {"name", "help", "type", "samples": [{"name", "labels": [[k, v]],
          "value"}]}, in the given order.
dir       the registry holds a MultiProcessCollector on DIR. With "names",
          each family is cut to those sample names by Metric._restricted_metric,
          which is what `?name[]=` means (prometheus_client's own restricted
          registry finds nothing to collect in multiprocess mode).
"""
import json
import sys

from prometheus_client import CollectorRegistry
from prometheus_client.exposition import choose_encoder
from prometheus_client.metrics_core import Metric
from prometheus_client.multiprocess import MultiProcessCollector


class Given:
    def __init__(self, families):
        self.families = families

    def collect(self):
        for f in self.families:
            m = Metric(f['name'], f['help'], f['type'])
            for s in f['samples']:
                m.add_sample(s['name'], dict(s['labels']), s['value'])
            yield m


class Restricted:
    def __init__(self, inner, names):
        self.inner = inner
        self.names = set(names)

    def collect(self):
        for m in self.inner.collect():
            r = m._restricted_metric(self.names)
            if r:
                yield r


def answer(registry, header):
    try:
        encoder, content_type = choose_encoder(header)
    except Exception as e:
        return {'error': f'{type(e).__name__}: {e}'}
    return {'content_type': content_type, 'body': encoder(registry).decode('utf-8')}


def main():
    request = json.load(sys.stdin)
    registry = CollectorRegistry()
    if sys.argv[1:2] == ['families']:
        registry.register(Given(request['families']))
    elif sys.argv[1:2] == ['dir'] and len(sys.argv) == 3:
        collector = MultiProcessCollector(None, path=sys.argv[2])
        if request.get('names') is not None:
            collector = Restricted(collector, request['names'])
        registry.register(collector)
    else:
        sys.exit(__doc__)
    out = [answer(registry, h) for h in request['headers']]
    sys.stdout.write(json.dumps(out))


if __name__ == '__main__':
    main()

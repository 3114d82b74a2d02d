"""Merge a multiprocess directory with prometheus_client's own collector.

Usage: py_collect.py DIR [--format text|openmetrics|json]

text         prometheus_client.exposition.generate_latest (text format 0.0.4)
openmetrics  prometheus_client.openmetrics.exposition.generate_latest
json         a JSON list of families, sorted by name:
               {"name", "type", "help",
                "samples": [{"name", "labels": {...}, "value"}]}
             samples sorted by (name, sorted label items); each value is
             Python's repr() of the float ("0.30000000000000004", "1e+20",
             "inf", "-inf", "nan", "-0.0") so it round-trips exactly.

Output goes to stdout as UTF-8 bytes. Exits non-zero on error.
"""
import argparse
import json
import sys

from prometheus_client import CollectorRegistry
from prometheus_client.exposition import generate_latest as generate_text
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.openmetrics.exposition import generate_latest as generate_openmetrics


def to_json(registry):
    families = []
    for metric in registry.collect():
        samples = [{'name': s.name, 'labels': dict(sorted(s.labels.items())), 'value': repr(float(s.value))}
                   for s in metric.samples]
        samples.sort(key=lambda s: (s['name'], sorted(s['labels'].items())))
        families.append({'name': metric.name, 'type': metric.type,
                         'help': metric.documentation, 'samples': samples})
    families.sort(key=lambda f: f['name'])
    return (json.dumps(families, indent=1, ensure_ascii=False) + '\n').encode('utf-8')


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument('dir')
    parser.add_argument('--format', choices=['text', 'openmetrics', 'json'], default='text')
    args = parser.parse_args()

    registry = CollectorRegistry()
    MultiProcessCollector(registry, path=args.dir)
    if args.format == 'text':
        out = generate_text(registry)
    elif args.format == 'openmetrics':
        out = generate_openmetrics(registry)
    else:
        out = to_json(registry)
    sys.stdout.buffer.write(out)
    sys.stdout.flush()


if __name__ == '__main__':
    main()

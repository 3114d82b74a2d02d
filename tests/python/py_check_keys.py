"""Check that every key in DIR/*.db is in prometheus_client's canonical form.

Usage: py_check_keys.py DIR

Reads each file with MmapedDict.read_all_values_from_file and checks
key == json.dumps(json.loads(key), sort_keys=True), which is how
prometheus_client.mmap_dict.mmap_key writes keys. Prints a JSON summary
{"files": N, "entries": N, "mismatches": [{"file", "key", "expected"}]}.
Exits 1 on any mismatch, 2 if DIR holds no .db file (nothing was checked).
"""
import glob
import json
import os
import sys

from prometheus_client.mmap_dict import MmapedDict


def main():
    if len(sys.argv) != 2:
        sys.exit(f'usage: {sys.argv[0]} DIR')
    files = sorted(glob.glob(os.path.join(sys.argv[1], '*.db')))
    entries = 0
    mismatches = []
    for f in files:
        for key, _value, _timestamp, _pos in MmapedDict.read_all_values_from_file(f):
            entries += 1
            expected = json.dumps(json.loads(key), sort_keys=True)
            if key != expected:
                mismatches.append({'file': os.path.basename(f), 'key': key, 'expected': expected})
    print(json.dumps({'files': len(files), 'entries': entries, 'mismatches': mismatches}, indent=1))
    if not files:
        print(f'no .db files in {sys.argv[1]}', file=sys.stderr)
        sys.exit(2)
    sys.exit(1 if mismatches else 0)


if __name__ == '__main__':
    main()

"""Usage: py_mark_dead.py DIR PID

Calls prometheus_client.multiprocess.mark_process_dead(PID, DIR), which
removes DIR/gauge_live*_PID.db. Exits non-zero on error.
"""
import os
import sys

from prometheus_client.multiprocess import mark_process_dead


def main():
    if len(sys.argv) != 3:
        sys.exit(f'usage: {sys.argv[0]} DIR PID')
    path, pid = sys.argv[1], sys.argv[2]
    if not os.path.isdir(path):
        sys.exit(f'{path}: not a directory')
    mark_process_dead(int(pid), path)


if __name__ == '__main__':
    main()

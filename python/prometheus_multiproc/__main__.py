"""``python -m prometheus_multiproc ...`` (and the ``prometheus-multiproc``
console script): runs the ``prometheus-multiproc`` command shipped in the
wheel (``serve``, ``collect``, ``mark-dead``, ``inspect``; ``--help`` lists
them), replacing this Python process."""

import os
import sys
from pathlib import Path

BINARY = Path(__file__).resolve().parent / "bin" / "prometheus-multiproc"


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    if not BINARY.is_file():
        sys.stderr.write(
            f"prometheus-multiproc: the command is not in this build ({BINARY} is missing);"
            " build the wheel with scripts/build-python.sh\n")
        return 1
    os.execv(BINARY, [str(BINARY), *argv])


if __name__ == "__main__":
    sys.exit(main())

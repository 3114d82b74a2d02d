"""Prints repr() and prometheus_client's floatToGoString() of each double.

Usage: py_floats.py FILE, where FILE holds one IEEE 754 bit pattern per line
as 16 hex digits. Output: one line per input, "repr<TAB>floatToGoString".
"""
import struct
import sys

from prometheus_client.utils import floatToGoString

with open(sys.argv[1]) as f:
    for line in f:
        (v,) = struct.unpack("<d", int(line, 16).to_bytes(8, "little"))
        sys.stdout.write(f"{v!r}\t{floatToGoString(v)}\n")

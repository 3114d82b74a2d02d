"""Clients that send a scrape and never read the response.

Usage: stuck_clients.py HOST:PORT PATH COUNT
Opens COUNT connections with a tiny receive buffer, sends one GET on each,
waits until the server has started answering on every one (without reading
anything), prints "holding", then keeps them open until stdin closes.
"""
import select
import socket
import sys

host, port = sys.argv[1].rsplit(":", 1)
path = sys.argv[2]
count = int(sys.argv[3])
socks = []
for _ in range(count):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.connect((host, int(port)))
    socks.append(s)
for s in socks:
    s.sendall(f"GET {path} HTTP/1.1\r\nHost: {host}\r\n\r\n".encode())
waiting = list(socks)
while waiting:
    readable, _, _ = select.select(waiting, [], [], 120)
    if not readable:
        sys.exit("the server never answered")
    for s in readable:
        waiting.remove(s)
print("holding", flush=True)
sys.stdin.read()
for s in socks:
    s.close()

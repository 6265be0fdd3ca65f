#!/usr/bin/env python3
"""A DNS server on 127.0.0.1 that answers every A query with 127.0.0.1 (and AAAA with no
records) after a fixed delay: the latency of a distant resolver, which the kernel here cannot add
(no netem). Benchmarks only. Usage: slow_dns.py DELAY_MS; prints "listening PORT"."""

import collections
import socket
import struct
import sys
import threading
import time


def answer(query: bytes) -> bytes:
    qid, _flags, qdcount = struct.unpack("!HHH", query[:6])
    # Walk the question name to find QTYPE.
    i = 12
    while query[i] != 0:
        i += query[i] + 1
    qtype = struct.unpack("!H", query[i + 1:i + 3])[0]
    question = query[12:i + 5]
    if qtype == 1:  # A
        record = b"\xc0\x0c" + struct.pack("!HHIH", 1, 1, 60, 4) + socket.inet_aton("127.0.0.1")
        ancount = 1
    else:
        record, ancount = b"", 0
    header = struct.pack("!HHHHHH", qid, 0x8180, qdcount, ancount, 0, 0)
    return header + question + record


def main():
    delay = int(sys.argv[1]) / 1000
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    sock.bind(("127.0.0.1", 0))
    print(f"listening {sock.getsockname()[1]}", flush=True)
    # One sender thread and a FIFO (every answer has the same delay, so due times are in order):
    # a thread per answer would make the server, not the client, the bottleneck.
    due = collections.deque()
    ready = threading.Condition()

    def sender():
        while True:
            with ready:
                while not due:
                    ready.wait()
                when, data, peer = due.popleft()
            time.sleep(max(0.0, when - time.monotonic()))
            sock.sendto(data, peer)

    threading.Thread(target=sender, daemon=True).start()
    while True:
        query, peer = sock.recvfrom(512)
        with ready:
            due.append((time.monotonic() + delay, answer(query), peer))
            ready.notify()


if __name__ == "__main__":
    main()

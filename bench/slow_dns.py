#!/usr/bin/env python3
"""A DNS server on 127.0.0.1 that answers every A query with 127.0.0.1 (and AAAA with no
records) after a fixed delay: the latency of a distant resolver, which the kernel here cannot add
(no netem). Benchmarks only. Usage: slow_dns.py DELAY_MS; prints "listening PORT"."""

import collections
import select
import socket
import struct
import sys
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
    sock.setblocking(False)
    print(f"listening {sock.getsockname()[1]}", flush=True)
    # One thread, one FIFO (every answer has the same delay, so due times are in order), and
    # every waiting query drained per wake-up: the server's own CPU shares the machine with the
    # client under test, so it must stay small next to the client's (threads contending for the
    # GIL made a burst of queries wait on the server, not on the delay).
    due = collections.deque()
    poller = select.poll()
    poller.register(sock, select.POLLIN)
    while True:
        wait_ms = None if not due else max(0.0, (due[0][0] - time.monotonic()) * 1000)
        if poller.poll(wait_ms):
            while True:
                try:
                    query, peer = sock.recvfrom(512)
                except BlockingIOError:
                    break
                due.append((time.monotonic() + delay, answer(query), peer))
        now = time.monotonic()
        while due and due[0][0] <= now:
            _, data, peer = due.popleft()
            sock.sendto(data, peer)


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""A loopback TCP relay that adds latency: every chunk is forwarded half the round-trip time
after it arrived, in each direction, in order. The kernel has no netem here, so this is how the
benchmark gives netcheck and curl the same added round trip. The TCP handshake with the relay
itself is not delayed (for either client); everything after it is.

usage: delay_relay.py LISTEN_PORT UPSTREAM_HOST:PORT RTT_MS   (prints "ready PORT" when listening)
"""

import asyncio
import sys


async def pump(reader, writer, delay):
    """Forwards reader -> writer, each chunk `delay` seconds after it was read, order kept."""
    loop = asyncio.get_running_loop()
    queue = asyncio.Queue()

    async def deliver():
        while True:
            due, chunk = await queue.get()
            wait = due - loop.time()
            if wait > 0:
                await asyncio.sleep(wait)
            if chunk is None:
                writer.close()
                return
            writer.write(chunk)
            await writer.drain()

    sender = asyncio.create_task(deliver())
    try:
        while True:
            chunk = await reader.read(65536)
            await queue.put((loop.time() + delay, chunk or None))
            if not chunk:
                break
        await sender
    except (ConnectionError, asyncio.CancelledError):
        sender.cancel()
        writer.close()


async def main():
    listen_port = int(sys.argv[1])
    host, port = sys.argv[2].rsplit(":", 1)
    one_way = float(sys.argv[3]) / 2000.0

    async def handle(client_reader, client_writer):
        try:
            up_reader, up_writer = await asyncio.wait_for(asyncio.open_connection(host, int(port)), 10)
        except (OSError, asyncio.TimeoutError):
            client_writer.close()
            return
        await asyncio.gather(
            pump(client_reader, up_writer, one_way),
            pump(up_reader, client_writer, one_way),
            return_exceptions=True,
        )

    server = await asyncio.start_server(handle, "127.0.0.1", listen_port)
    print("ready", server.sockets[0].getsockname()[1], flush=True)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        pass

#!/usr/bin/env python3
"""The official Snowpipe Streaming SDK (PyPI `snowpipe-streaming`) against `netcheck emulate`, as
the baseline of bench/bench.py's capacity figures. Prints one JSON object on stdout.

- default: the cold first commit, a cold client (constructor, open, one row) until its commit is
  seen; with --tuned the SDK's append buffering and status-cache settings turned down.
- --unpaced SECONDS: the SDK's unpaced maximum. 1 KB events appended without pause for SECONDS,
  then until the last is committed: events committed per second of that wall time, and the
  process's CPU (Python and the SDK's Rust threads) per event. Unpaced, the SDK leaves the REST
  `rows` call for its file mode (zstd-compressed, encrypted NDJSON files uploaded to the stage
  :pipe-info names, registered with `…/filebuffer`), so it needs `emulate --stage` and an
  S3-compatible server: bench/bench.py runs it through tests/oracle/sdk_namespace.sh, in a
  loopback-only network namespace with moto as the stage.

The SDK reaches the emulator by address (https://127.0.0.1:PORT) and trusts its CA through
SSL_CERT_FILE; the caller sets both.
"""

import argparse
import json
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "oracle"))
import sdk_client  # noqa: E402  (the oracle's client properties, shared)


def client(args, tuned):
    from snowflake.ingest.streaming import StreamingIngestClient

    properties = sdk_client.properties(args)
    if tuned:
        # The lag settings: flush appends at once, refresh the committed offset often.
        properties["max_append_request_buffer_duration_ms"] = 1
        properties["channel_status_cache_refresh_interval_seconds"] = 0
    return StreamingIngestClient(f"bench-{os.getpid()}", args.database, args.schema, args.pipe, properties=properties)


def badge_event():
    return {"badge_id": "BADGE-00000", "seq": 0, "zone_id": "ZONE-BENCH"}


def bench_first(args):
    t0 = time.perf_counter()
    c = client(args, tuned=args.tuned)
    name = f"bench-first-{os.getpid()}"
    channel, _ = c.open_channel(name)
    channel.append_rows([badge_event()], "0", "0")
    channel.wait_for_commit(lambda t: t == "0", timeout_seconds=60)
    wall = time.perf_counter() - t0
    c.drop_channel(name)
    c.close(wait_for_flush=False, timeout_seconds=5)
    return {"first_commit_s": wall, "tuned": args.tuned}


# Distinct events the unpaced run cycles through: built before the clock starts, so the figure is
# the SDK's cost (netcheck's own figure includes making its events). 20 MB, farther apart than a
# zstd window reaches, so a repeat does not flatter compression.
POOL_EVENTS = 20_000
EVENT_BYTES = 1024


def event_pool():
    """1 KB badge events padded with random text of a 32-letter alphabet (5 bits a byte, as
    netcheck's own events)."""
    alphabet = b"abcdefghijklmnopqrstuvwxyz234567"
    table = bytes(alphabet[b & 31] for b in range(256))
    events = []
    for seq in range(POOL_EVENTS):
        event = {"badge_id": f"BADGE-{seq % 100_000:05d}", "seq": seq, "zone_id": "ZONE-BENCH", "pad": ""}
        room = EVENT_BYTES - len(json.dumps(event, separators=(",", ":"))) - 1
        event["pad"] = os.urandom(room).translate(table).decode()
        events.append(event)
    return events


def bench_unpaced(args):
    pool = event_pool()
    c = client(args, tuned=False)
    name = f"bench-unpaced-{os.getpid()}"
    channel, _ = c.open_channel(name)

    def rows(first, n):
        start = first % POOL_EVENTS
        return pool[start:start + n]

    t0 = time.perf_counter()
    cpu0 = time.process_time()
    appended, pushbacks = sdk_client.append_unpaced(channel, args.unpaced, rows)
    append_s = time.perf_counter() - t0
    last = str(appended - 1)
    channel.wait_for_commit(lambda t: t == last, timeout_seconds=120)
    wall = time.perf_counter() - t0
    cpu = time.process_time() - cpu0
    committed = c.get_channel_statuses([name])[name].rows_inserted_count
    c.drop_channel(name)
    c.close(wait_for_flush=False, timeout_seconds=5)
    return {"unpaced_s": args.unpaced, "event_bytes": EVENT_BYTES, "appended": appended, "committed": committed,
            "sdk_pushbacks": pushbacks,
            "append_s": append_s, "commit_wall_s": wall, "committed_events_per_s": committed / wall,
            "cpu_s": cpu, "cpu_us_per_event": cpu / appended * 1e6}


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--url", required=True)
    p.add_argument("--account", default="myorg-myaccount")
    p.add_argument("--user", default="NETCHECK_USER")
    p.add_argument("--role", default="NETCHECK_ROLE")
    p.add_argument("--private-key-file", required=True)
    p.add_argument("--database", default="NETCHECK_DB")
    p.add_argument("--schema", default="PUBLIC")
    p.add_argument("--pipe", default="NETCHECK_EVENTS-STREAMING")
    p.add_argument("--tuned", action="store_true")
    p.add_argument("--unpaced", type=float, default=0, help="the unpaced maximum, appending for SECONDS")
    args = p.parse_args()
    print(json.dumps(bench_unpaced(args) if args.unpaced else bench_first(args)), flush=True)


if __name__ == "__main__":
    main()

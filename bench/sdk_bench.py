#!/usr/bin/env python3
"""The official Snowpipe Streaming SDK (PyPI `snowpipe-streaming`) against `netcheck emulate`, as
the baseline of bench/bench.py's capacity figures. Prints one JSON object on stdout.

  max:   appends batches of EVENT_SIZE-byte events unpaced for SECONDS, then waits for the last
         offset to be committed; events/s counted at the last commit, and the process's CPU
         (every thread: the SDK's core is Rust threads inside this process) per event.
  first: a cold client (constructor, open, one row) until its commit is seen; with --tuned the
         SDK's append buffering and status-cache settings turned down.

The SDK reaches the emulator by address (https://127.0.0.1:PORT) and trusts its CA through
SSL_CERT_FILE; the caller sets both.
"""

import argparse
import json
import os
import resource
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "oracle"))
import sdk_client  # noqa: E402  (the oracle's client properties, shared)


def cpu_seconds():
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def client(args, tuned):
    from snowflake.ingest.streaming import StreamingIngestClient

    properties = sdk_client.properties(args)
    # The emulator speaks the rowset (REST append) path only, not the stage-file path.
    properties["ignore_switch_to_file_mode"] = True
    if tuned:
        # The lag settings: flush appends at once, refresh the committed offset often.
        properties["max_append_request_buffer_duration_ms"] = 1
        properties["channel_status_cache_refresh_interval_seconds"] = 0
    return StreamingIngestClient(f"bench-{os.getpid()}", args.database, args.schema, args.pipe, properties=properties)


def events(start, n, size):
    pad = "x" * max(0, size - 120)
    return [{"badge_id": f"BADGE-{i % 100000:05}", "seq": i, "zone_id": "ZONE-BENCH", "pad": pad} for i in range(start, start + n)]


def bench_max(args):
    c = client(args, tuned=False)
    name = f"bench-max-{os.getpid()}"
    channel, _ = c.open_channel(name)
    batch = events(0, args.batch, args.event_size)
    cpu0, t0 = cpu_seconds(), time.perf_counter()
    sent = 0
    while time.perf_counter() - t0 < args.seconds:
        # The same rows each time (building them is the benchmark's cost, not the SDK's);
        # offsets still advance.
        channel.append_rows(batch, str(sent), str(sent + len(batch) - 1))
        sent += len(batch)
    last = str(sent - 1)
    channel.wait_for_commit(lambda t: t == last, timeout_seconds=120)
    wall = time.perf_counter() - t0
    cpu = cpu_seconds() - cpu0
    c.drop_channel(name)
    c.close(wait_for_flush=False, timeout_seconds=5)
    return {"events": sent, "seconds_to_last_commit": wall, "events_per_s": sent / wall, "cpu_s": cpu,
            "cpu_us_per_event": cpu / sent * 1e6, "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def bench_first(args):
    t0 = time.perf_counter()
    c = client(args, tuned=args.tuned)
    name = f"bench-first-{os.getpid()}"
    channel, _ = c.open_channel(name)
    channel.append_rows(events(0, 1, 200), "0", "0")
    channel.wait_for_commit(lambda t: t == "0", timeout_seconds=60)
    wall = time.perf_counter() - t0
    c.drop_channel(name)
    c.close(wait_for_flush=False, timeout_seconds=5)
    return {"first_commit_s": wall, "tuned": args.tuned}


def main():
    p = argparse.ArgumentParser()
    p.add_argument("mode", choices=["max", "first"])
    p.add_argument("--url", required=True)
    p.add_argument("--account", default="myorg-myaccount")
    p.add_argument("--user", default="NETCHECK_USER")
    p.add_argument("--role", default="NETCHECK_ROLE")
    p.add_argument("--private-key-file", required=True)
    p.add_argument("--database", default="NETCHECK_DB")
    p.add_argument("--schema", default="PUBLIC")
    p.add_argument("--pipe", default="NETCHECK_EVENTS-STREAMING")
    p.add_argument("--seconds", type=float, default=5.0)
    p.add_argument("--batch", type=int, default=1000)
    p.add_argument("--event-size", type=int, default=1024)
    p.add_argument("--tuned", action="store_true")
    args = p.parse_args()
    out = bench_max(args) if args.mode == "max" else bench_first(args)
    print(json.dumps(out), flush=True)


if __name__ == "__main__":
    main()

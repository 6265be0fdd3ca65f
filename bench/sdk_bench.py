#!/usr/bin/env python3
"""The official Snowpipe Streaming SDK (PyPI `snowpipe-streaming`) against `netcheck emulate`, as
the baseline of bench/bench.py's cold first commit: a cold client (constructor, open, one row)
until its commit is seen; with --tuned the SDK's append buffering and status-cache settings turned
down. Prints one JSON object on stdout.

No unpaced maximum: appended to without pause, the SDK leaves the REST rowset path for its
stage-file path (encrypted files uploaded to the pipe's stage), which the emulator does not serve
— and which, outside the oracle tests' loopback-only namespace, would look for a real stage.

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
    args = p.parse_args()
    print(json.dumps(bench_first(args)), flush=True)


if __name__ == "__main__":
    main()

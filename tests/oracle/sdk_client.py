#!/usr/bin/env python3
"""Oracle: the official Snowpipe Streaming SDK (PyPI `snowpipe-streaming`) against the emulator.

Snowflake's own client code, not netcheck's, so a misunderstanding shared by netcheck and its
emulator cannot hide. Run by tests/integration/emulator_oracles.rs inside a network namespace
that has only loopback; the SDK trusts the emulator CA through SSL_CERT_FILE (it ignores
REQUESTS_CA_BUNDLE).

Prints one JSON object per stage on stdout ({"stage", "ok", "detail"}) and exits 0 if every
stage it attempted passed. Stages: client (hostname, oauth/token, pipe-info happen inside the
constructor), open, append, commit, status, drop.

With --unpaced SECONDS it appends 1 KB rows without pause for that long instead of --rows once:
the SDK then leaves the REST `rows` call for its file mode (files uploaded to the stage
:pipe-info names, registered with `…/filebuffer`).
"""

import argparse
import json
import sys
import time


def emit(stage, ok, detail=""):
    print(json.dumps({"stage": stage, "ok": ok, "detail": str(detail)[:2000]}), flush=True)
    return ok


def properties(args):
    """The SDK's client properties for the emulator (also bench/sdk_bench.py's)."""
    return {
        "account": args.account,
        "user": args.user,
        "role": args.role,
        "url": args.url,
        "private_key_file": args.private_key_file,
        # Bound the SDK's own retries so a failure surfaces within the test's time limit.
        "mgmt_retry_total_backoff_seconds": 5,
        "data_retry_total_backoff_seconds": 5,
    }


def append_unpaced(channel, seconds, make_rows, batch=1000):
    """Appends `make_rows(first, n)` batches without pause for `seconds`, each batch with its
    offset tokens. When the SDK pushes back (429: its in-flight rows or megabytes are at their
    limit, or memory is), the batch is retried after 5 ms — an unpaced producer's best. Returns
    (rows appended, pushbacks); the last offset token is rows appended minus 1."""
    from snowflake.ingest.streaming import StreamingIngestError

    n = pushbacks = 0
    start = time.perf_counter()
    while time.perf_counter() - start < seconds:
        try:
            channel.append_rows(make_rows(n, batch), str(n), str(n + batch - 1))
        except StreamingIngestError as e:
            if e.http_status_code != 429:
                raise
            pushbacks += 1
            time.sleep(0.005)
            continue
        n += batch
    return n, pushbacks


def oracle_rows(first, n):
    """Rows of about 1 KB: file mode switches on bytes buffered, not on rows."""
    return [{"id": i, "source": "sdk", "pad": "x" * 1000} for i in range(first, first + n)]


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--url", required=True, help="https://127.0.0.1:PORT (needs 3+ labels)")
    p.add_argument("--account", required=True)
    p.add_argument("--user", required=True)
    p.add_argument("--role", required=True)
    p.add_argument("--private-key-file", required=True)
    p.add_argument("--database", required=True)
    p.add_argument("--schema", required=True)
    p.add_argument("--pipe", required=True)
    p.add_argument("--rows", type=int, default=10)
    p.add_argument("--timeout", type=int, default=20)
    p.add_argument("--unpaced", type=float, default=0, help="append without pause for SECONDS")
    args = p.parse_args()

    try:
        from snowflake.ingest.streaming import StreamingIngestClient
    except ImportError as e:
        emit("import", False, e)
        return 3

    try:
        client = StreamingIngestClient(
            "netcheck-oracle", args.database, args.schema, args.pipe, properties=properties(args)
        )
    except Exception as e:  # the SDK raises its own error types; the text is the evidence
        emit("client", False, repr(e))
        return 1
    emit("client", True)

    try:
        channel, status = client.open_channel("sdk-oracle")
        emit("open", True, getattr(status, "status_code", status))
    except Exception as e:
        emit("open", False, repr(e))
        client.close(wait_for_flush=False, timeout_seconds=0)
        return 1

    ok = True
    try:
        if args.unpaced:
            appended, _ = append_unpaced(channel, args.unpaced, oracle_rows)
        else:
            appended = args.rows
            channel.append_rows([{"id": i, "source": "sdk"} for i in range(appended)], "0", str(appended - 1))
        emit("append", True, appended)
        last = str(appended - 1)
        channel.wait_for_commit(lambda t: t == last, timeout_seconds=args.timeout)
        emit("commit", True, last)
        statuses = client.get_channel_statuses(["sdk-oracle"])
        emit("status", True, json.dumps({k: {"committed": v.latest_committed_offset_token,
                                             "rows_inserted": v.rows_inserted_count} for k, v in statuses.items()}))
        channel.close()
        client.drop_channel("sdk-oracle")
        emit("drop", True)
    except Exception as e:
        ok = emit("rows", False, repr(e))
    finally:
        client.close(wait_for_flush=False, timeout_seconds=0)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

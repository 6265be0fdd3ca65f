#!/usr/bin/env python3
"""Oracle: the Snowpipe Streaming REST tutorial flow, written from Snowflake's documentation with
`requests` + PyJWT + cryptography — no netcheck code involved.

JWT (RS256, iss = ACCOUNT.USER.SHA256:fingerprint, sub = ACCOUNT.USER, 59 min) -> GET
/v2/streaming/hostname -> POST /oauth/token (scope = ingest host) -> PUT open channel -> POST
rows (NDJSON, offsetToken) -> POST bulk channel status until committed -> DELETE channel.

Host names are pinned like curl --resolve (`--resolve host:port:ip`, repeatable): getaddrinfo is
patched for those names only and refuses every other name, so the system resolver is never asked.

Prints one JSON object per step and exits 0 only if every row was committed.
"""

import argparse
import base64
import hashlib
import json
import socket
import sys
import time

import jwt
import requests
from cryptography.hazmat.primitives import serialization


def pin_names(entries):
    table = {}
    for entry in entries:
        host, port, ip = entry.split(":", 2)
        table[(host.lower(), int(port))] = ip.strip("[]")
    real = socket.getaddrinfo

    def getaddrinfo(host, port, *args, **kwargs):
        key = (str(host).lower(), int(port or 0))
        if key in table:
            return real(table[key], port, *args, **kwargs)
        try:
            socket.inet_pton(socket.AF_INET6 if ":" in str(host) else socket.AF_INET, str(host))
        except OSError:
            raise socket.gaierror(f"{host} is not pinned; refusing to ask the system resolver")
        return real(host, port, *args, **kwargs)

    socket.getaddrinfo = getaddrinfo


def step(name, ok, **detail):
    print(json.dumps({"step": name, "ok": ok, **detail}), flush=True)
    if not ok:
        sys.exit(1)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--account", required=True)
    p.add_argument("--user", required=True)
    p.add_argument("--account-host", required=True)
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--private-key-file", required=True)
    p.add_argument("--ca-file", required=True)
    p.add_argument("--database", required=True)
    p.add_argument("--schema", required=True)
    p.add_argument("--pipe", required=True)
    p.add_argument("--resolve", action="append", default=[])
    p.add_argument("--rows", type=int, default=1000)
    p.add_argument("--batch", type=int, default=100)
    args = p.parse_args()
    pin_names(args.resolve)

    with open(args.private_key_file, "rb") as f:
        key = serialization.load_pem_private_key(f.read(), password=None)
    spki = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    fingerprint = "SHA256:" + base64.b64encode(hashlib.sha256(spki).digest()).decode()
    # The tutorial: upper-case account (locator part only) and user.
    account = args.account.upper().split(".")[0]
    user = args.user.upper()
    now = int(time.time())
    token = jwt.encode(
        {"iss": f"{account}.{user}.{fingerprint}", "sub": f"{account}.{user}",
         "iat": now, "exp": now + 59 * 60},
        key, algorithm="RS256",
    )

    s = requests.Session()
    s.verify = args.ca_file
    s.trust_env = False  # no proxies from the environment
    account_url = f"https://{args.account_host}:{args.port}"
    r = s.get(f"{account_url}/v2/streaming/hostname",
              headers={"Authorization": f"Bearer {token}",
                       "X-Snowflake-Authorization-Token-Type": "KEYPAIR_JWT",
                       "Accept": "application/json"}, timeout=10)
    step("hostname", r.status_code == 200, status=r.status_code)
    ingest_host = r.text.strip().replace("_", "-").lower()

    r = s.post(f"{account_url}/oauth/token",
               headers={"Authorization": f"Bearer {token}",
                        "Content-Type": "application/x-www-form-urlencoded"},
               data={"grant_type": "urn:ietf:params:oauth:grant-type:jwt-bearer",
                     "scope": ingest_host}, timeout=10)
    step("token", r.status_code == 200, status=r.status_code)
    scoped = r.text.strip()
    headers = {"Authorization": f"Bearer {scoped}", "Accept": "application/json"}

    ingest_url = f"https://{ingest_host}:{args.port}"
    base = f"/databases/{args.database}/schemas/{args.schema}/pipes/{args.pipe}"
    channel = "tutorial-channel"
    r = s.put(f"{ingest_url}/v2/streaming{base}/channels/{channel}", headers=headers,
              json={}, timeout=10)
    body = r.json() if r.status_code == 200 else {}
    step("open", r.status_code == 200 and
         body.get("channel_status", {}).get("channel_status_code") == "SUCCESS",
         status=r.status_code)
    cont = body["next_continuation_token"]

    sent = 0
    last_offset = None
    while sent < args.rows:
        n = min(args.batch, args.rows - sent)
        lines = "".join(json.dumps({"id": sent + i, "source": "tutorial"}) + "\n" for i in range(n))
        last_offset = str(sent + n - 1)
        r = s.post(f"{ingest_url}/v2/streaming/data{base}/channels/{channel}/rows",
                   params={"continuationToken": cont, "offsetToken": last_offset},
                   headers={**headers, "Content-Type": "application/x-ndjson"},
                   data=lines.encode(), timeout=10)
        if r.status_code != 200:
            step("append", False, status=r.status_code, body=r.text[:500])
        cont = r.json()["next_continuation_token"]
        sent += n
    step("append", True, rows=sent)

    deadline = time.time() + 20
    status = {}
    while time.time() < deadline:
        r = s.post(f"{ingest_url}/v2/streaming{base}:bulk-channel-status", headers=headers,
                   json={"channel_names": [channel]}, timeout=10)
        status = r.json().get("channel_statuses", {}).get(channel, {})
        if status.get("last_committed_offset_token") == last_offset:
            break
        time.sleep(0.25)
    step("commit", status.get("last_committed_offset_token") == last_offset and
         status.get("rows_inserted") == args.rows and status.get("rows_error_count") == 0,
         status=status)

    r = s.delete(f"{ingest_url}/v2/streaming{base}/channels/{channel}", headers=headers, timeout=10)
    step("drop", r.status_code == 200, status=r.status_code)
    return 0


if __name__ == "__main__":
    sys.exit(main())

#!/bin/sh
# The official SDK against `netcheck emulate`, both inside a network namespace that holds only
# loopback: run as `unshare -n -p -f --mount-proc sh tests/oracle/sdk_namespace.sh SCRIPT [ARGS...]`
# (a PID namespace too, so nothing started here outlives the script); SCRIPT gets ARGS plus
# --url https://127.0.0.1:PORT --private-key-file KEY. Used by
# tests/integration/emulator_oracles.rs and bench/bench.py.
#
# env: BIN (netcheck), DIR (an empty directory for the output), PY (a python with
#      snowpipe-streaming). With MOTO (moto_server), STAGE_CERT, STAGE_KEY (its certificate chain
#      for 127.0.0.1 and key) and STAGE_CA (the CA that issued it), moto serves the stage over TLS
#      on loopback, with the emulator's bucket created, and `emulate --stage` names it in
#      :pipe-info, so the SDK's file mode uploads there.
# out: DIR/sdk.out, sdk.err, sdk.rc (SCRIPT's), DIR/state (the emulator's; requests.jsonl and
#      rows.jsonl are written when it stops), emulate.err, moto.err (moto's request log), and
#      emulate.stat, moto.stat (/proc/PID/stat once SCRIPT is done).
set -u
ip link set lo up || exit 90
CAS="$DIR/state/ca.pem"
STAGE=""
MPID=""
if [ -n "${MOTO:-}" ]; then
  "$MOTO" -H 127.0.0.1 -p 0 --ssl-cert "$STAGE_CERT" --ssl-key "$STAGE_KEY" > /dev/null 2> "$DIR/moto.err" &
  MPID=$!
  i=0
  until grep -q 'https://127.0.0.1:' "$DIR/moto.err" 2>/dev/null; do
    i=$((i+1)); [ $i -gt 300 ] && { kill -TERM $MPID; exit 92; }; sleep 0.1
  done
  MPORT=$(grep -o 'https://127.0.0.1:[0-9]*' "$DIR/moto.err" | head -n 1 | sed 's/.*://')
  # The bucket :pipe-info names (the emulator's STAGE_BUCKET).
  curl -sf --max-time 10 --cacert "$STAGE_CA" -X PUT "https://127.0.0.1:$MPORT/netcheck-emulator-stage" > /dev/null \
    || { kill -TERM $MPID; exit 93; }
  STAGE="127.0.0.1:$MPORT"
fi
"$BIN" emulate --listen 127.0.0.1:0 --state-dir "$DIR/state" ${STAGE:+--stage "$STAGE"} \
  > "$DIR/emulate.out" 2> "$DIR/emulate.err" &
EPID=$!
i=0
until grep -q '^listening on' "$DIR/emulate.out" 2>/dev/null; do
  i=$((i+1)); [ $i -gt 300 ] && { kill -TERM $EPID; exit 91; }; sleep 0.1
done
PORT=$(sed -n 's/^listening on .*://p' "$DIR/emulate.out")
if [ -n "$STAGE" ]; then
  cat "$DIR/state/ca.pem" "$STAGE_CA" > "$DIR/cas.pem"
  CAS="$DIR/cas.pem"
fi
SCRIPT=$1
shift
# The SDK trusts CAs through SSL_CERT_FILE only (it ignores REQUESTS_CA_BUNDLE).
SSL_CERT_FILE="$CAS" timeout 120 "$PY" "$SCRIPT" "$@" --url "https://127.0.0.1:$PORT" \
  --private-key-file "$DIR/state/rsa_key.p8" > "$DIR/sdk.out" 2> "$DIR/sdk.err"
echo $? > "$DIR/sdk.rc"
# The servers' CPU so far (/proc/PID/stat), for a benchmark to set beside the SDK's.
cat /proc/$EPID/stat > "$DIR/emulate.stat"
[ -n "$MPID" ] && cat /proc/$MPID/stat > "$DIR/moto.stat"
kill -TERM $EPID
wait $EPID
if [ -n "$MPID" ]; then
  kill -TERM $MPID
  wait $MPID
fi
exit 0

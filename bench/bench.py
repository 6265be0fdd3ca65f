#!/usr/bin/env python3
"""netcheck benchmarks (issue 6), every figure printed beside the baseline it is judged against,
measured in this same script: curl for the dns/tcp/tls probe, the critical path for a run's
duration, the asked rate for the stream test. Everything runs on loopback against `netcheck
emulate` (its own process); added latency comes from the emulator's `latency=` fault (API
answers) or bench/delay_relay.py (every byte, for the TLS probe). Writes bench/results/*.json.

Not a test: nothing here passes or fails; the targets are printed for the reader.

env: NETCHECK_BIN (default target/release/netcheck), BENCH_RUNS (default 20),
     BENCH_QUICK=1 (fewer runs, shorter rate tests: a smoke run of the script itself),
     BENCH_ONLY=capacity (only the capacity figures against the official SDK),
     NETCHECK_PYTHON (a python with `snowpipe-streaming`, for the SDK baselines),
     NETCHECK_MOTO_SERVER (moto's server, the stage of the SDK's unpaced run; default
     target/moto-venv/bin/moto_server; that run also needs root for `unshare -n`, and openssl)
"""

import datetime
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.environ.get("NETCHECK_BIN", os.path.join(ROOT, "target", "release", "netcheck"))
QUICK = os.environ.get("BENCH_QUICK") == "1"
RUNS = int(os.environ.get("BENCH_RUNS", "5" if QUICK else "20"))
CP_RUNS = 3 if QUICK else 7
HOST = "myorg-myaccount.snowflakecomputing.com"


def clean_env(extra=None):
    """No proxy variables, no user's Snowflake config: only what the benchmark passes."""
    home = tempfile.mkdtemp(prefix="netcheck-bench-home-")
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": home, "SNOWFLAKE_HOME": home, "NO_COLOR": "1"}
    env.update(extra or {})
    return env


class Emulator:
    """`netcheck emulate` in its own process, stopped on exit."""

    def cpu_seconds(self):
        """The emulator process's CPU time so far (user + system)."""
        fields = open(f"/proc/{self.proc.pid}/stat").read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def __init__(self, faults=()):
        self.dir = tempfile.mkdtemp(prefix="netcheck-bench-emu-")
        args = [BIN, "emulate", "--state-dir", self.dir]
        for f in faults:
            args += ["--fault", f]
        self.proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        line = self.proc.stdout.readline()
        match = re.search(r"listening on 127\.0\.0\.1:(\d+)", line)
        if not match:
            self.stop()
            sys.exit(f"emulator did not start: {line!r}")
        self.port = int(match.group(1))
        env_file = os.path.join(self.dir, "netcheck.env")
        for _ in range(100):
            if os.path.exists(env_file):
                break
            time.sleep(0.05)
        self.env = clean_env()
        for line in open(env_file):
            k, _, v = line.removeprefix("export ").strip().partition("=")
            self.env[k] = v.strip("'")
        self.ca = os.path.join(self.dir, "ca.pem")

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        # On stop the emulator dumps every committed row: gigabytes after a rate run.
        shutil.rmtree(self.dir, ignore_errors=True)
        if hasattr(self, "env"):
            shutil.rmtree(self.env["HOME"], ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, *_):
        self.stop()


class Relay:
    """bench/delay_relay.py in front of a port."""

    def __init__(self, upstream_port, rtt_ms):
        script = os.path.join(ROOT, "bench", "delay_relay.py")
        self.proc = subprocess.Popen([sys.executable, script, "0", f"127.0.0.1:{upstream_port}", str(rtt_ms)], stdout=subprocess.PIPE, text=True)
        self.port = int(self.proc.stdout.readline().split()[1])

    def __enter__(self):
        return self

    def __exit__(self, *_):
        self.proc.terminate()
        self.proc.wait(10)


def run_netcheck(args, env, timeout=300):
    """Runs netcheck; returns (JSON report, wall seconds, rusage of the child)."""
    start = time.perf_counter()
    proc = subprocess.Popen([BIN] + args, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env)
    out = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    try:
        return json.loads(out), wall, usage
    except json.JSONDecodeError:
        sys.exit(f"netcheck {' '.join(args)} gave no JSON (exit {proc.returncode})")


def check(report, check_id):
    return next(c for c in report["checks"] if c["id"] == check_id)


def median(xs):
    return statistics.median(xs) if xs else None


def ratio(a, b):
    return a / b if a is not None and b else None


# --- 1. probe overhead vs curl ------------------------------------------------------------

def probe_once_netcheck(port, ca):
    args = ["run", "--account", f"https://{HOST}:{port}", "--resolve", f"{HOST}:{port}:127.0.0.1", "--ca-file", ca,
            "--only", "tls.account", "--format", "json"]
    report, _, _ = run_netcheck(args, clean_env())
    dns = check(report, "dns.account")["evidence"]["elapsed"]
    tcp = check(report, "tcp.account")["evidence"]["attempts"][0]["elapsed"]
    tls = check(report, "tls.account")["evidence"]["handshakes"][0]["elapsed"]
    return dns, tcp, tls


def probe_once_curl(port, ca):
    out = subprocess.run(["curl", "-sS", "-o", "/dev/null", "--resolve", f"{HOST}:{port}:127.0.0.1", "--cacert", ca,
                          "-w", "%{time_namelookup} %{time_connect} %{time_appconnect}", f"https://{HOST}:{port}/"],
                         capture_output=True, text=True, env=clean_env(), timeout=60).stdout
    lookup, connect, app = (float(x) * 1000 for x in out.split())
    return lookup, connect - lookup, app - connect


def bench_probe(rtt_ms):
    with Emulator() as emu:
        relay = Relay(emu.port, rtt_ms) if rtt_ms else None
        port = relay.port if relay else emu.port
        try:
            ours, curls = [], []
            for _ in range(RUNS):  # interleaved, so both see the same conditions
                ours.append(probe_once_netcheck(port, emu.ca))
                curls.append(probe_once_curl(port, emu.ca))
        finally:
            if relay:
                relay.__exit__()
    rows = {}
    for i, phase in enumerate(["dns", "tcp", "tls"]):
        a, b = median([o[i] for o in ours]), median([c[i] for c in curls])
        rows[phase] = {"netcheck_ms": a, "curl_ms": b, "ratio": ratio(a, b)}
    total_a, total_b = median([sum(o) for o in ours]), median([sum(c) for c in curls])
    rows["dns+tcp+tls"] = {"netcheck_ms": total_a, "curl_ms": total_b, "ratio": ratio(total_a, total_b)}
    return rows


# --- 2. duration vs critical path ----------------------------------------------------------

def bench_critical_path(latency_ms):
    out = {}
    with Emulator([f"latency={latency_ms}ms"]) as emu:
        for name, extra in [("run", []), ("run --full", ["--full"])]:
            samples = []
            for _ in range(CP_RUNS):
                report, _, _ = run_netcheck(["run", "--connection", "emulator", "--format", "json"] + extra, emu.env)
                samples.append((report["duration_ms"], report["critical_path_ms"]))
            d, cp = median([s[0] for s in samples]), median([s[1] for s in samples])
            out[name] = {"duration_ms": d, "critical_path_ms": cp, "ratio": median([s[0] / s[1] for s in samples])}
    return out


def bench_critical_path_relay(rtt_ms):
    """The whole path delayed (TCP, TLS and every answer, both hosts), as the lab's relay does."""
    ingest = "myorg-myaccount.us-west-2.ingest.snowflakecomputing.com"
    out = {}
    with Emulator() as emu, Relay(emu.port, rtt_ms) as relay:
        p = relay.port
        base = ["run", "--account", f"https://{HOST}:{p}", "--resolve", f"{HOST}:{p}:127.0.0.1,{ingest}:{p}:127.0.0.1",
                "--ca-file", emu.ca, "--user", "NETCHECK_USER", "--role", "NETCHECK_ROLE",
                "--private-key-file", os.path.join(emu.dir, "rsa_key.p8"), "--database", "NETCHECK_DB", "--schema", "PUBLIC",
                "--table", "NETCHECK_EVENTS", "--format", "json"]
        for name, extra in [("run", []), ("run --full", ["--full"])]:
            samples = []
            for _ in range(CP_RUNS):
                report, _, _ = run_netcheck(base + extra, clean_env())
                samples.append((report["duration_ms"], report["critical_path_ms"]))
            out[name] = {"duration_ms": median([s[0] for s in samples]), "critical_path_ms": median([s[1] for s in samples]),
                         "ratio": median([s[0] / s[1] for s in samples])}
    return out


# --- 3. small and quick --------------------------------------------------------------------

def bench_startup():
    if shutil.which("hyperfine"):
        with tempfile.NamedTemporaryFile(suffix=".json") as f:
            subprocess.run(["hyperfine", "-N", "--warmup", "5", "--runs", "50" if QUICK else "200", "--export-json", f.name,
                            f"{BIN} --version"], check=True, capture_output=True)
            r = json.load(open(f.name))["results"][0]
        return {"tool": "hyperfine", "mean_ms": r["mean"] * 1000, "median_ms": r["median"] * 1000, "stddev_ms": r["stddev"] * 1000}
    times = []
    for _ in range(50):
        start = time.perf_counter()
        subprocess.run([BIN, "--version"], capture_output=True, check=True)
        times.append((time.perf_counter() - start) * 1000)
    return {"tool": "python loop (install hyperfine for a better figure)", "mean_ms": statistics.mean(times), "median_ms": median(times)}


def bench_rss_and_size():
    with Emulator() as emu:
        peaks = []
        for _ in range(3):
            _, _, usage = run_netcheck(["run", "--connection", "emulator", "--full", "--format", "json"], emu.env)
            peaks.append(usage.ru_maxrss / 1024)
    stripped = tempfile.mktemp(prefix="netcheck-stripped-")
    subprocess.run(["strip", "-o", stripped, BIN], check=True)
    size = {"binary_mb": os.path.getsize(BIN) / 1e6, "stripped_mb": os.path.getsize(stripped) / 1e6}
    os.unlink(stripped)
    return {"peak_rss_mb_max_of_3": max(peaks)}, size


def bench_allowlist(hosts=500, dns_delay_ms=50):
    """`allowlist.hosts` with 1 host and with `hosts` hosts, every name resolved by a DNS server
    that answers after `dns_delay_ms` (bench/slow_dns.py), all connecting to one loopback
    listener: the check's duration and the process's peak RSS."""
    import socket
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(4096)
    port = listener.getsockname()[1]
    dns = subprocess.Popen([sys.executable, os.path.join(ROOT, "bench", "slow_dns.py"), str(dns_delay_ms)], stdout=subprocess.PIPE, text=True)
    dns_port = int(dns.stdout.readline().split()[1])
    home = tempfile.mkdtemp(prefix="netcheck-bench-allowlist-")
    out = {}
    try:
        for n in (1, hosts):
            path = os.path.join(home, f"allowlist-{n}.json")
            json.dump([{"type": "STAGE", "host": f"h{i}.stage.example.test", "port": port} for i in range(n)], open(path, "w"))
            args = ["run", "--account", HOST, "--dns-server", f"127.0.0.1:{dns_port}", "--only", "allowlist.hosts",
                    "--allowlist", path, "--format", "json"]
            samples = [run_netcheck(args, clean_env()) for _ in range(3 if QUICK else 7)]
            out[n] = {"check_ms": median([check(r, "allowlist.hosts")["duration_ms"] for r, _, _ in samples]),
                      "unreachable": max(check(r, "allowlist.hosts")["evidence"]["unreachable"] for r, _, _ in samples),
                      "peak_rss_mb": max(u.ru_maxrss / 1024 for _, _, u in samples)}
    finally:
        dns.terminate()
        dns.wait()
        listener.close()
        shutil.rmtree(home, ignore_errors=True)
    return {"hosts": hosts, "dns_delay_ms": dns_delay_ms, "one_host": out[1], "many_hosts": out[hosts]}


# --- 4. sustained rate ---------------------------------------------------------------------

def bench_rate(extra, timeout_s):
    with Emulator() as emu:
        args = ["run", "--connection", "emulator", "--full", "--format", "json", "--deadline", "300", "--timeout", str(timeout_s)] + extra
        report, wall, usage = run_netcheck(args, emu.env)
    rate = check(report, "stream.rate")
    ev = rate["evidence"]
    cpu_s = (ev.get("client_cpu_ms") or 0) / 1000
    return {
        "verdict": rate["verdict"],
        "finding": rate["finding"],
        "asked_events_per_s": ev["asked_events_per_s"],
        "achieved_events_per_s": ev["achieved_events_per_s"],
        "achieved_mb_per_s": ev["achieved_mb_per_s"],
        "wire_mb_per_s": ev["wire_mb_per_s"],
        "channels": ev["layout"]["channels"],
        "append_latency_ms": ev["append_latency_ms"],
        "commit_lag_ms": ev["commit_lag_ms"],
        "sent": ev["sent"], "committed": ev["committed"], "errored": ev["errored"], "lost": ev["lost"],
        "client_cpu_percent_of_one_core": ev.get("client_cpu_percent_of_one_core"),
        # What one core of client CPU pushes: the client's capacity, whatever the emulator's.
        "client_events_per_cpu_second": ev["committed"] / cpu_s if cpu_s else None,
        "process_cpu_s": usage.ru_utime + usage.ru_stime,
        "process_peak_rss_mb": usage.ru_maxrss / 1024,
        "wall_s": wall,
    }


# --- 5. capacity against the official SDK -----------------------------------------------------

PYTHON = os.environ.get("NETCHECK_PYTHON")


def sdk(emu, extra=()):
    """bench/sdk_bench.py (the official SDK's cold first commit) against `emu`; its JSON, or
    {"error": ...}."""
    if not PYTHON:
        return {"error": "NETCHECK_PYTHON not set"}
    env = dict(emu.env, SSL_CERT_FILE=emu.ca)
    args = [PYTHON, os.path.join(ROOT, "bench", "sdk_bench.py"), "--url", f"https://127.0.0.1:{emu.port}",
            "--private-key-file", os.path.join(emu.dir, "rsa_key.p8")] + list(extra)
    out = subprocess.run(args, capture_output=True, text=True, env=env, timeout=300)
    for line in reversed(out.stdout.splitlines()):
        if line.startswith("{"):
            return json.loads(line)
    errors = [l for l in (out.stdout + out.stderr).splitlines() if "Error" in l]
    error = errors[-1] if errors else f"exit {out.returncode}"
    # The SDK's own words after its boilerplate ("...Inner Error: <cause>").
    return {"error": error.rsplit("Inner Error: ", 1)[-1][:200]}


MOTO = os.environ.get("NETCHECK_MOTO_SERVER", os.path.join(ROOT, "target", "moto-venv", "bin", "moto_server"))


def stage_cert(dir):
    """A CA and a certificate for 127.0.0.1 it issued (openssl), for moto's TLS: (chain, key, ca)."""
    def ossl(*args):
        subprocess.run(["openssl", *args], cwd=dir, check=True, capture_output=True)
    ossl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.pem", "-days", "1",
         "-subj", "/CN=netcheck bench stage CA", "-addext", "basicConstraints=critical,CA:TRUE",
         "-addext", "keyUsage=critical,keyCertSign")
    ossl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "leaf.key", "-out", "leaf.csr", "-subj", "/CN=127.0.0.1")
    with open(os.path.join(dir, "leaf.ext"), "w") as f:
        f.write("subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n")
    ossl("x509", "-req", "-in", "leaf.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial", "-out", "leaf.pem",
         "-days", "1", "-extfile", "leaf.ext")
    return tuple(os.path.join(dir, f) for f in ("leaf.pem", "leaf.key", "ca.pem"))


def sdk_unpaced(seconds):
    """bench/sdk_bench.py --unpaced: the official SDK's unpaced maximum. Unpaced, the SDK uploads
    files to the stage and registers them, so it runs through tests/oracle/sdk_namespace.sh: a
    loopback-only network namespace holding the emulator (`--stage`) and moto (the stage). Its JSON,
    with how the rows went (files registered, REST appends, the files' compression), or
    {"error": ...}."""
    if not PYTHON:
        return {"error": "NETCHECK_PYTHON not set"}
    if not os.path.exists(MOTO):
        return {"error": f"{MOTO} not found (set NETCHECK_MOTO_SERVER)"}
    dir = tempfile.mkdtemp(prefix="netcheck-bench-sdk-")
    try:
        chain, key, ca = stage_cert(dir)
        out_dir = os.path.join(dir, "run")
        os.mkdir(out_dir)
        env = dict(clean_env(), BIN=BIN, DIR=out_dir, PY=PYTHON, MOTO=MOTO, STAGE_CERT=chain, STAGE_KEY=key, STAGE_CA=ca,
                   SS_LOG_LEVEL="info")
        args = ["unshare", "-n", "-p", "-f", "--mount-proc", "sh", os.path.join(ROOT, "tests", "oracle", "sdk_namespace.sh"),
                os.path.join(ROOT, "bench", "sdk_bench.py"), "--unpaced", str(seconds)]
        run = subprocess.run(args, capture_output=True, text=True, env=env, timeout=300)
        if run.returncode != 0:
            return {"error": f"sdk_namespace.sh exit {run.returncode} (unshare -n needs root): {run.stderr.strip()[-200:]}"}
        stdout = open(os.path.join(out_dir, "sdk.out")).read()
        result = next((json.loads(l) for l in reversed(stdout.splitlines()) if l.startswith("{")), None)
        if result is None:
            err = open(os.path.join(out_dir, "sdk.err")).read()
            return {"error": err.rsplit("Inner Error: ", 1)[-1].strip()[-200:] or "no result"}
        endpoints = [json.loads(l)["endpoint"] for l in open(os.path.join(out_dir, "state", "requests.jsonl"))]
        files = [dict(re.findall(r"(\w+)=(\d+)", l)) for l in stdout.splitlines() if "FileUploader: uploaded file" in l]
        compressed = sum(int(f.get("compressed_size_bytes", 0)) for f in files)
        raw = sum(int(f.get("uncompressed_size_bytes", 0)) for f in files)
        def cpu_s(name):
            fields = open(os.path.join(out_dir, name)).read().rsplit(")", 1)[1].split()
            return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        result.update(files_registered=endpoints.count("filebuffer"), rest_appends=endpoints.count("append"),
                      files_compression_ratio=compressed / raw if raw else None,
                      emulator_cpu_s=cpu_s("emulate.stat"), stage_cpu_s=cpu_s("moto.stat"))
        return result
    finally:
        shutil.rmtree(dir, ignore_errors=True)


def bench_capacity():
    """`--profile max`, rates held at 10k/25k/50k and the cold first commit (beside the official
    SDK's, on the same emulator); the emulator's own CPU per MB; the SDK's unpaced maximum (its
    file mode, on an emulator whose stage is moto)."""
    out = {}
    with Emulator() as emu:
        cpu0 = emu.cpu_seconds()
        args = ["run", "--connection", "emulator", "--full", "--format", "json", "--deadline", "120",
                "--profile", "max", "--duration", "8" if QUICK else "20"]
        report, wall, usage = run_netcheck(args, emu.env)
        emu_cpu = emu.cpu_seconds() - cpu0
        ev = check(report, "stream.rate")["evidence"]
        mb = sum(s["achieved_mb_per_s"] for s in ev["steps"]) * ev["steady_interval_ms"] / 1000
        # Client CPU per event at the step that held the highest rate (its rate phase, making
        # events included): the figure to set beside the SDK's unpaced maximum.
        held_steps = [s for s in ev["steps"] if not s.get("limited_by") and s.get("client_cpu_percent_of_one_core")]
        top_step = max(held_steps, key=lambda s: s["achieved_events_per_s"], default=None)
        out["max"] = {"finding": check(report, "stream.rate")["finding"], "events_per_s": ev["max_events_per_s"],
                      "cpu_us_per_event": top_step["client_cpu_percent_of_one_core"] / 100
                      / top_step["achieved_events_per_s"] * 1e6 if top_step else None,
                      "mb_per_s": ev["max_mb_per_s"], "limited_by": ev.get("limited_by"), "steps": len(ev["steps"]),
                      "resent_requests": ev["resent_requests"], "sent": ev["sent"], "committed": ev["committed"],
                      "errored": ev["errored"], "lost": ev["lost"], "emulator_cpu_s": emu_cpu,
                      "emulator_mb_per_cpu_s": mb / emu_cpu if emu_cpu else None}
        out["held"] = {}
        for rate in (10_000, 25_000, 50_000):
            r = bench_rate(["--rate", str(rate), "--event-size", "1024", "--duration", "4" if QUICK else "10"], 10)
            out["held"][rate] = r
        report, wall, _ = run_netcheck(["run", "--connection", "emulator", "--full", "--rows", "1", "--format", "json"], emu.env)
        out["first"] = {"wall_s": wall, "commit_polls": check(report, "stream.commit")["evidence"]["polls"]}
        out["sdk_first"] = sdk(emu)
        out["sdk_first_tuned"] = sdk(emu, ["--tuned"])
    out["sdk_unpaced"] = sdk_unpaced(4 if QUICK else 10)
    return out


def capacity_rows(cap):
    rows = []
    m = cap["max"]
    sdk_max = cap["sdk_unpaced"]
    rows.append(("`--profile max`: committed events/s (1 KB), limited by", f"{fmt(m['events_per_s'], 0)} ({m['limited_by'] or 'time'})",
                 f"SDK unpaced {fmt(sdk_max.get('committed_events_per_s'), 0)} ({sdk_max.get('files_registered', '-')} files)"
                 if "error" not in sdk_max else f"SDK unpaced: {sdk_max['error']}",
                 fmt(ratio(m["events_per_s"], sdk_max.get("committed_events_per_s")), 2), "≥ 1.5×"))
    rows.append(("`--profile max`: client CPU per event (µs) at the highest step held", fmt(m["cpu_us_per_event"], 2),
                 f"SDK unpaced {fmt(sdk_max.get('cpu_us_per_event'), 2)}",
                 fmt(ratio(m["cpu_us_per_event"], sdk_max.get("cpu_us_per_event")), 2), "≤ 0.5×"))
    rows.append(("`--profile max`: resends, lost", f"{m['resent_requests']}, {m['lost']}", f"sent {m['sent']} = {m['committed']} + {m['errored']}", "", "0, 0"))
    rows.append(("emulator: MB of NDJSON per emulator CPU-second (TLS, zstd)", fmt(m["emulator_mb_per_cpu_s"], 0), "150 MB/s", fmt(ratio(m["emulator_mb_per_cpu_s"], 150), 2), "≥ 1.0×"))
    for rate, r in cap["held"].items():
        cpu_us = 1e6 / r["client_events_per_cpu_second"] if r["client_events_per_cpu_second"] else None
        rows.append((f"`--rate {rate}` (1 KB): events/s held", fmt(r["achieved_events_per_s"], 0), f"asked {rate:,}",
                     fmt(ratio(r["achieved_events_per_s"], rate), 4), "1 ± 0.005"))
        rows.append((f"`--rate {rate}`: client CPU per event (µs, rate phase)", fmt(cpu_us, 2), "", "", ""))
    t, u = cap["sdk_first_tuned"], cap["sdk_first"]
    rows.append(("cold first committed row: `run --full --rows 1` wall (s)", fmt(cap["first"]["wall_s"], 3),
                 f"SDK tuned {fmt(t.get('first_commit_s'), 3)} / as shipped {fmt(u.get('first_commit_s'), 3)}",
                 fmt(ratio(cap["first"]["wall_s"], t.get("first_commit_s")), 2), "≤ 1.0×"))
    return rows


def machine():
    cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), platform.processor())
    commit = subprocess.run(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    return {"cpu": cpu, "cores": os.cpu_count(), "kernel": platform.release(), "load_avg_at_start": os.getloadavg(),
            "commit": commit, "binary": BIN, "curl": subprocess.run(["curl", "--version"], capture_output=True, text=True).stdout.split("\n")[0]}


def fmt(x, digits=1):
    return "-" if x is None else f"{x:,.{digits}f}"


def main():
    if not os.path.exists(BIN):
        sys.exit(f"{BIN} not found: cargo build --release first (bench/run.sh does)")
    results = {"machine": machine(), "started_at": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"), "runs": RUNS}
    rows = []  # (metric, netcheck, baseline, ratio, target)
    if os.environ.get("BENCH_ONLY") == "capacity":
        cap = bench_capacity()
        results["capacity"] = cap
        rows += capacity_rows(cap)
        return report(results, rows)

    for rtt in (0, 50, 200):
        label = "loopback" if rtt == 0 else f"+{rtt} ms RTT"
        probe = bench_probe(rtt)
        results[f"probe_{rtt}ms"] = probe
        for phase in ("tcp", "tls", "dns+tcp+tls"):
            p = probe[phase]
            rows.append((f"probe {phase}, {label} (median of {RUNS}, ms)", fmt(p["netcheck_ms"], 2), f"curl {fmt(p['curl_ms'], 2)}", fmt(p["ratio"], 2), "≤ 1.05×" if phase != "tcp" else ""))

    for lat in (50, 200):
        cp = bench_critical_path(lat)
        results[f"critical_path_{lat}ms"] = cp
        for name, r in cp.items():
            rows.append((f"`{name}` duration, latency={lat}ms (median of {CP_RUNS}, ms)", fmt(r["duration_ms"], 0), f"critical path {fmt(r['critical_path_ms'], 0)}", fmt(r["ratio"], 3), "≤ 1.10×"))

    for rtt in (50, 200):
        cp = bench_critical_path_relay(rtt)
        results[f"critical_path_relay_{rtt}ms"] = cp
        for name, r in cp.items():
            rows.append((f"`{name}` duration, +{rtt} ms RTT relay (median of {CP_RUNS}, ms)", fmt(r["duration_ms"], 0), f"critical path {fmt(r['critical_path_ms'], 0)}", fmt(r["ratio"], 3), "≤ 1.10×"))

    startup = bench_startup()
    results["startup"] = startup
    rows.append(("`netcheck --version` startup, mean / median (ms)", f"{fmt(startup['mean_ms'], 2)} / {fmt(startup['median_ms'], 2)}", startup["tool"], "", "< 5 ms"))
    rss, size = bench_rss_and_size()
    results["rss"], results["size"] = rss, size
    rows.append(("peak RSS of `run --full` (MB)", fmt(rss["peak_rss_mb_max_of_3"]), "", "", "< 30 MB"))
    rows.append(("release binary (MB)", fmt(size["binary_mb"]), f"stripped {fmt(size['stripped_mb'])}", "", "< 20 MB"))

    results["allowlist"] = []
    for delay in (50, 200):
        allow = bench_allowlist(dns_delay_ms=delay)
        results["allowlist"].append(allow)
        one, many = allow["one_host"], allow["many_hosts"]
        rows.append((f"`allowlist.hosts`, {allow['hosts']} hosts vs 1, DNS +{delay} ms (median, ms)", fmt(many["check_ms"], 1), f"1 host {fmt(one['check_ms'], 1)}", fmt(ratio(many["check_ms"], one["check_ms"]), 2), "< 3×"))
        rows.append((f"`allowlist.hosts` peak RSS, {allow['hosts']} hosts vs 1, DNS +{delay} ms (MB)", fmt(many["peak_rss_mb"]), f"1 host {fmt(one['peak_rss_mb'])}", fmt(ratio(many["peak_rss_mb"], one["peak_rss_mb"]), 2), "flat"))

    large = bench_rate(["--profile", "large", "--duration", "3" if QUICK else "10"], 10)
    results["rate_large"] = large
    rows.append(("`--profile large`: events/s", fmt(large["achieved_events_per_s"], 0), f"asked {fmt(large['asked_events_per_s'], 0)}", fmt(ratio(large["achieved_events_per_s"], large["asked_events_per_s"]), 3), "≥ 1.0× (held)"))
    rows.append(("`--profile large`: client CPU (% of one core)", fmt(large["client_cpu_percent_of_one_core"]), "", "", "< 25 %"))
    lat = large["append_latency_ms"]
    rows.append(("`--profile large`: append p50/p95/p99 (ms)", "/".join(fmt(lat[k]) for k in ("p50", "p95", "p99")), "budget 500", "", "p95 < 500 ms"))
    rows.append(("`--profile large`: sent = committed + errored", f"{large['sent']} = {large['committed']} + {large['errored']}", "", "", "lost 0"))

    flood = bench_rate(["--rate", "150000", "--event-size", "1024", "--duration", "2" if QUICK else "4"], 30)
    results["rate_1kb_max"] = flood
    rows.append(("1 KB events, `--rate 150000`: achieved events/s", fmt(flood["achieved_events_per_s"], 0), f"asked {fmt(flood['asked_events_per_s'], 0)}", fmt(ratio(flood["achieved_events_per_s"], flood["asked_events_per_s"]), 3), "(emulator-bound)"))
    rows.append(("1 KB events: client events per CPU-second", fmt(flood["client_events_per_cpu_second"], 0), "", "", "≥ 100,000"))

    cap = bench_capacity()
    results["capacity"] = cap
    rows += capacity_rows(cap)
    report(results, rows)


def report(results, rows):
    os.makedirs(os.path.join(ROOT, "bench", "results"), exist_ok=True)
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    path = os.path.join(ROOT, "bench", "results", f"{stamp}-{results['machine']['commit'] or 'nocommit'}.json")
    json.dump(results, open(path, "w"), indent=2)

    m = results["machine"]
    print(f"\nnetcheck {m['commit']} on {m['cpu']}, {m['cores']} cores, kernel {m['kernel']}, load {m['load_avg_at_start'][0]:.1f} at start; {m['curl']}\n")
    print("| metric | netcheck | baseline | ratio | target |")
    print("| --- | --- | --- | --- | --- |")
    for r in rows:
        print("| " + " | ".join(r) + " |")
    print(f"\nJSON: {os.path.relpath(path, ROOT)}")


if __name__ == "__main__":
    main()

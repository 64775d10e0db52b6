#!/usr/bin/env python3
"""The side-by-side bench: confgate, nginx and HAProxy in front of the same three replicas,
configured alike (one worker, round robin, keep-alive to the upstreams), each proxy pinned to
CPU 0 and the load generator and backends to CPU 1. Targets are interleaved row by row
(A B C for the GET row, A B C for the cache row, ..., then the next round); each figure is the
median of the rounds, and each ratio to HAProxy the median of the rounds' ratios.

    bench/peers/run.sh [--rounds 3] [--seconds 5] [--smoke]

The replicas are bench/peers/replica.cc, one process listening on three ports and answering a
600-byte JSON document with an ETag and `Cache-Control: max-age=60` with one recv() and one
send() a request, not examples/config-service: an evhttp replica costs more per request than any
of the proxies, so it would be the bottleneck on the shared load core and every proxy would
measure the same. A static nginx (`--replicas nginx`, the bench's replica until 2026-11) costs
about 1.4 us of user time a request more, and with it the load core ran out first in confgate's
runs (CPU 1 at 99% while confgate's CPU 0 idled 7%). The "load core use" row shows how close
each run came to that limit.

Counts that do not drift on a shared machine (instructions and system calls per request) are
taken once, as the difference of two runs of different length, so start-up and shutdown cancel.
Writes bench/results/peers.md (or the path given with --out).
"""

import argparse
import json
import os
import re
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PATH = "/v1/kv/app/bench"
BODY = json.dumps({"key": "app/bench", "index": 42, "value": {"feature": "on", "pad": "x" * 520}})
PROXY_CPU, LOAD_CPU = "0", "1"
NAMES = ("haproxy", "nginx", "confgate")


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_port(port, timeout=60):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("nothing listens on %d" % port)


def children(pid):
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open("/proc/%s/stat" % entry) as stat:
                    if int(stat.read().rsplit(")", 1)[1].split()[1]) == pid:
                        found.append(int(entry))
            except (OSError, IndexError, ValueError):
                pass
    return found


def cpu_seconds(pid):
    """User + system CPU time of process `pid` so far, all its threads."""
    with open("/proc/%d/stat" % pid) as stat:
        fields = stat.read().rsplit(")", 1)[1].split()  # from field 3 (state) on
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def cpu_ticks(cpu):
    """(busy, total) clock ticks of CPU `cpu` so far, from /proc/stat: busy is user, nice,
    system, irq and softirq; total adds idle, iowait and steal (time the hypervisor took, which
    is not the load's). guest time is already inside user and nice."""
    with open("/proc/stat") as stat:
        for line in stat:
            fields = line.split()
            if fields[0] == "cpu" + cpu:
                user, nice, system, idle, iowait, irq, softirq, steal = \
                    [int(value) for value in fields[1:9]]
                busy = user + nice + system + irq + softirq
                return busy, busy + idle + iowait + steal
    raise RuntimeError("no cpu%s in /proc/stat" % cpu)


def rss_kib(pid):
    with open("/proc/%d/status" % pid) as status:
        return int(re.search(r"VmRSS:\s+(\d+)", status.read()).group(1))


def make_certificate(directory):
    key, crt = os.path.join(directory, "tls.key"), os.path.join(directory, "tls.crt")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:P-256", "-nodes", "-keyout", key, "-out", crt, "-subj",
                    "/CN=bench.local", "-addext", "subjectAltName=DNS:bench.local", "-days", "2"],
                   check=True, capture_output=True)
    pem = os.path.join(directory, "tls.pem")
    with open(pem, "w") as out:
        out.write(open(crt).read() + open(key).read())
    return crt, key, pem


def start_replicas(directory, build):
    """bench/peers/replica.cc: the cheapest server for the shared load core."""
    body = os.path.join(directory, "body.json")
    with open(body, "w") as handle:
        handle.write(BODY)
    process = subprocess.Popen(["taskset", "-c", LOAD_CPU,
                                os.path.join(ROOT, build, "bench", "bench_replica"), body, "3"],
                               stdout=subprocess.PIPE, text=True)
    ports = [int(process.stdout.readline()) for _ in range(3)]
    for port in ports:
        wait_port(port)
    return process, ports


def start_nginx_replicas(directory, _build):
    ports = [free_port() for _ in range(3)]
    servers = "".join(
        """server { listen 127.0.0.1:%d reuseport backlog=4096;
             location / { default_type application/json; add_header ETag '"v42"';
                          add_header Cache-Control "max-age=60"; return 200 '%s'; } }
""" % (port, BODY) for port in ports)
    path = os.path.join(directory, "backend.conf")
    with open(path, "w") as handle:
        handle.write("""worker_processes 1; daemon off; master_process off;
pid %(d)s/backend.pid; error_log %(d)s/backend-error.log;
events { worker_connections 8192; }
http { access_log off; keepalive_requests 1000000;
  client_body_temp_path %(d)s; proxy_temp_path %(d)s; fastcgi_temp_path %(d)s;
  uwsgi_temp_path %(d)s; scgi_temp_path %(d)s;
%(servers)s}
""" % {"d": directory, "servers": servers})
    process = subprocess.Popen(["taskset", "-c", LOAD_CPU, "nginx", "-p", directory, "-c", path],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for port in ports:
        wait_port(port)
    return process, ports


class Setup:
    """What one proxy run is configured for."""

    def __init__(self, workers=1, cache=False, tls=None):
        self.workers, self.cache, self.tls = workers, cache, tls


def confgate_config(directory, port, backends, setup, build):
    servers = "\n".join("      - {address: 127.0.0.1:%d}" % b for b in backends)
    tls = "\n    tls: {certificate: %s, private_key: %s}" % setup.tls[:2] if setup.tls else ""
    cache = "\n    cache: {enabled: true, max_stale: 1h}" if setup.cache else ""
    path = os.path.join(directory, "confgate.yaml")
    with open(path, "w") as handle:
        handle.write("""listeners:
  - address: 127.0.0.1:%d%s
admin: {address: 127.0.0.1:0}
workers: %d
limits: {max_connections: 20000, drain_timeout: 1s}
access_log: {enabled: false}
upstreams:
  cs:
    balancer: round_robin
    servers:
%s
    keepalive: {max_idle_per_worker: 64, idle_timeout: 30s}
routes:
  - match: {prefix: /}
    upstream: cs
    kind: read%s
""" % (port, tls, setup.workers, servers, cache))
    return [os.path.join(ROOT, build, "confgate"), "-c", path], signal.SIGTERM


def nginx_config(directory, port, backends, setup, _build):
    servers = "".join("server 127.0.0.1:%d; " % b for b in backends)
    ssl = ""
    if setup.tls:
        ssl = " ssl; ssl_certificate %s; ssl_certificate_key %s; " \
              "ssl_protocols TLSv1.2 TLSv1.3" % setup.tls[:2]
    cache = ""
    if setup.cache:
        cache = "proxy_cache_path %s/cache keys_zone=cs:10m; " % directory
    path = os.path.join(directory, "nginx.conf")
    with open(path, "w") as handle:
        handle.write("""worker_processes %(workers)d; daemon off; master_process %(master)s;
pid %(d)s/nginx.pid; error_log %(d)s/error.log; worker_rlimit_nofile 20000;
events { worker_connections 8192; }
http {
  access_log off; keepalive_requests 1000000; %(cache_path)s
  client_body_temp_path %(d)s; proxy_temp_path %(d)s; fastcgi_temp_path %(d)s;
  uwsgi_temp_path %(d)s; scgi_temp_path %(d)s;
  upstream cs { %(servers)s keepalive 64; keepalive_requests 1000000; }
  server {
    listen 127.0.0.1:%(port)d%(ssl)s;
    location / { proxy_pass http://cs; proxy_http_version 1.1; proxy_set_header Connection "";
                 %(cache)s }
  }
}
""" % {"d": directory, "servers": servers, "port": port, "ssl": ssl, "workers": setup.workers,
       "master": "on" if setup.workers > 1 else "off", "cache_path": cache,
       "cache": "proxy_cache cs;" if setup.cache else ""})
    return ["nginx", "-p", directory, "-c", path], signal.SIGTERM


def haproxy_config(directory, port, backends, setup, _build):
    servers = "\n".join("  server s%d 127.0.0.1:%d" % (i, b) for i, b in enumerate(backends))
    bind = "bind 127.0.0.1:%d" % port + (" ssl crt %s" % setup.tls[2] if setup.tls else "")
    cache_section, cache_rules = "", ""
    if setup.cache:
        cache_section = "cache cs\n  total-max-size 64\n  max-age 60\n"
        cache_rules = "  http-request cache-use cs\n  http-response cache-store cs\n"
    path = os.path.join(directory, "haproxy.cfg")
    with open(path, "w") as handle:
        handle.write("""global
  nbthread %d
  maxconn 8192
defaults
  mode http
  timeout connect 1s
  timeout client 30s
  timeout server 30s
  option http-keep-alive
%sfrontend fe
  %s
  default_backend be
backend be
  balance roundrobin
  http-reuse always
%s%s
""" % (setup.workers, cache_section, bind, cache_rules, servers))
    return ["haproxy", "-db", "-f", path], signal.SIGUSR1


CONFIGS = {"confgate": confgate_config, "nginx": nginx_config, "haproxy": haproxy_config}


class Proxy:
    """One proxy process, optionally under a measuring wrapper (valgrind, strace)."""

    def __init__(self, name, workdir, backends, setup, build, wrapper=(), cpus=PROXY_CPU):
        self.directory = tempfile.mkdtemp(dir=workdir, prefix=name + "-")
        self.port = free_port()
        command, self.stop_signal = CONFIGS[name](self.directory, self.port, backends, setup,
                                                  build)
        self.name, self.wrapped = name, bool(wrapper)
        self.log_path = os.path.join(self.directory, "stderr.log")
        self.process = subprocess.Popen(["taskset", "-c", cpus] + list(wrapper) + command,
                                        stdout=subprocess.DEVNULL,
                                        stderr=open(self.log_path, "w"))
        try:
            wait_port(self.port, timeout=120 if wrapper else 15)
        except RuntimeError:
            self.process.kill()
            sys.exit("%s did not start:\n%s" % (name, open(self.log_path).read()))
        time.sleep(0.2)

    def proxy_pid(self):
        # strace forks the proxy; valgrind runs it in its own process.
        if self.wrapped and self.process.args[3] == "strace":
            return children(self.process.pid)[0]
        return self.process.pid

    def stop(self):
        try:
            os.kill(self.proxy_pid(), self.stop_signal)
        except (OSError, IndexError):
            pass
        try:
            self.process.wait(timeout=120)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def url(proxy, tls=False):
    return "%s://127.0.0.1:%d%s" % ("https" if tls else "http", proxy.port, PATH)


def to_ms(value, unit):
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def wrk(proxy, seconds, connections=64, tls=False):
    result = subprocess.run(["taskset", "-c", LOAD_CPU, "wrk", "-t1", "-c%d" % connections,
                             "-d%ds" % seconds, "--latency", url(proxy, tls)],
                            capture_output=True, text=True)
    rate = re.search(r"Requests/sec:\s+([\d.]+)", result.stdout)
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)|Socket errors: (.*)", result.stdout)
    if errors:
        print("  %s: %s" % (proxy.name, errors.group(0)), file=sys.stderr)
    latency = {p: to_ms(v, u) for p, v, u in re.findall(r"\s(\d+)%\s+([\d.]+)(us|ms|s)\b",
                                                         result.stdout)}
    return (float(rate.group(1)) if rate else 0.0, latency.get("50", 0.0),
            latency.get("99", 0.0))


def handshakes_per_second(proxy, seconds):
    # Full handshakes only (-new): the cost of TLS session set-up.
    result = subprocess.run(["taskset", "-c", LOAD_CPU, "openssl", "s_time", "-connect",
                             "127.0.0.1:%d" % proxy.port, "-new", "-time", str(seconds)],
                            capture_output=True, text=True)
    total = re.search(r"(\d+) connections in ([\d.]+)s", result.stdout)
    return int(total.group(1)) / seconds if total else 0.0


def fixed_requests(proxy, count):
    """Sends exactly `count` requests; False (with what went wrong on stderr) when some failed."""
    result = subprocess.run(["taskset", "-c", LOAD_CPU, "h2load", "--h1", "-n", str(count),
                             "-c", "64", "-t", "1", url(proxy)], capture_output=True, text=True)
    done = re.search(r"(\d+) succeeded", result.stdout)
    if done and int(done.group(1)) == count:
        return True
    sample = subprocess.run(["curl", "-si", "--max-time", "10", url(proxy)], capture_output=True,
                            text=True).stdout
    print("%s: h2load did not complete %d requests:\n%s\none request now:\n%s\nproxy log:\n%s"
          % (proxy.name, count, result.stdout, sample, open(proxy.log_path).read()[-2000:]),
          file=sys.stderr)
    return False


def instructions(name, workdir, backends, build, count):
    def run(requests):
        out = os.path.join(workdir, "callgrind.%s.%d" % (name, requests))
        proxy = Proxy(name, workdir, backends, Setup(), build,
                      wrapper=("valgrind", "--tool=callgrind", "--callgrind-out-file=" + out))
        completed = fixed_requests(proxy, requests)
        proxy.stop()
        if not completed:
            return None
        total = 0
        for line in open(out):
            if line.startswith("summary:") or line.startswith("totals:"):
                total = int(line.split()[1])
        return total
    return counted_difference(run, count)


def counted_difference(run, count):
    """(run(count) - run(count / 5)) per request; each run is tried twice before giving up."""
    def once_or_twice(requests):
        for _ in range(2):
            total = run(requests)
            if total is not None:
                return total
        sys.exit("counting failed twice; see the output above")
    small, large = count // 5, count
    return (once_or_twice(large) - once_or_twice(small)) / (large - small)


def system_calls(name, workdir, backends, build, count):
    def run(requests):
        out = os.path.join(workdir, "strace.%s.%d" % (name, requests))
        proxy = Proxy(name, workdir, backends, Setup(), build,
                      wrapper=("strace", "-f", "-c", "-o", out))
        completed = fixed_requests(proxy, requests)
        proxy.stop()
        if not completed:
            return None
        for line in open(out):
            fields = line.split()
            if fields and fields[-1] == "total":
                return int(fields[3])
        return 0
    return counted_difference(run, count)


def idle_connection_kib(proxy, connections):
    if not fixed_requests(proxy, 64):  # pools and buffers warm before the baseline
        sys.exit("%s: warm-up requests failed" % proxy.name)
    time.sleep(0.3)
    before = rss_kib(proxy.proxy_pid())
    request = ("GET %s HTTP/1.1\r\nHost: bench\r\n\r\n" % PATH).encode()
    held = []
    for _ in range(connections):
        sock = socket.create_connection(("127.0.0.1", proxy.port))
        sock.sendall(request)
        received = b""
        while b"\r\n\r\n" not in received or len(received.split(b"\r\n\r\n", 1)[1]) < len(BODY):
            chunk = sock.recv(65536)
            if not chunk:
                break
            received += chunk
        held.append(sock)
    time.sleep(0.5)
    after = rss_kib(proxy.proxy_pid())
    for sock in held:
        sock.close()
    return (after - before) / connections


def median(values):
    return statistics.median(values) if values else 0.0


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=int, default=5)
    parser.add_argument("--requests", type=int, default=20000,
                        help="requests of the longer counted run (instructions, syscalls)")
    parser.add_argument("--idle", type=int, default=2000, help="idle client connections")
    parser.add_argument("--build", default="build")
    parser.add_argument("--replicas", choices=("bench", "nginx"), default="bench",
                        help="bench/peers/replica.cc (default) or a static nginx")
    parser.add_argument("--smoke", action="store_true", help="one short round of every row")
    parser.add_argument("--out", default=os.path.join(ROOT, "bench", "results", "peers.md"))
    args = parser.parse_args()
    if args.smoke:
        args.rounds, args.seconds, args.requests, args.idle = 1, 1, 1000, 200
    for tool in ("nginx", "haproxy", "wrk", "h2load", "openssl", "taskset", "valgrind",
                 "strace"):
        if shutil.which(tool) is None:
            sys.exit("missing %s (bench/peers/run.sh installs it)" % tool)
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))

    workdir = tempfile.mkdtemp(prefix="confgate-bench-")
    tls = make_certificate(workdir)
    start = start_replicas if args.replicas == "bench" else start_nginx_replicas
    backend, backends = start(workdir, args.build)
    rows = {}

    def record(row, name, value):
        rows.setdefault(row, {n: [] for n in NAMES})[name].append(value)

    try:
        # Row by row within a round (every proxy's GET run, then every proxy's cache run,
        # ...), so the figures each ratio compares are taken seconds apart, not a minute: this
        # machine's speed drifts between phases that last about that long.
        for round_index in range(args.rounds):
            for name in NAMES:
                print("round %d: %s GET" % (round_index + 1, name), file=sys.stderr)
                proxy = Proxy(name, workdir, backends, Setup(), args.build)
                cpu_before, wall_before = cpu_seconds(proxy.proxy_pid()), time.time()
                load_before = cpu_ticks(LOAD_CPU)
                rate, p50, p99 = wrk(proxy, args.seconds)
                load_after = cpu_ticks(LOAD_CPU)
                # The share of CPU 0 the proxy used: below 1, the load (wrk and the backend on
                # CPU 1) set the pace, and requests per CPU-second show the proxy's capacity.
                share = (cpu_seconds(proxy.proxy_pid()) - cpu_before) / (time.time() - wall_before)
                record("rps", name, rate)
                record("cpu_share", name, share)
                # Near 1, wrk and the replicas used all of CPU 1: the load set the pace.
                record("load_share", name, (load_after[0] - load_before[0]) /
                       max(1, load_after[1] - load_before[1]))
                record("rps_per_cpu", name, rate / share if share > 0 else 0.0)
                record("p50", name, p50)
                record("p99", name, p99)
                proxy.stop()
            for name in NAMES:
                # A proxy of its own: idle_connection_kib() warms it up before it measures.
                print("round %d: %s idle" % (round_index + 1, name), file=sys.stderr)
                proxy = Proxy(name, workdir, backends, Setup(), args.build)
                record("idle", name, idle_connection_kib(proxy, args.idle))
                proxy.stop()
            for name in NAMES:
                print("round %d: %s cache" % (round_index + 1, name), file=sys.stderr)
                proxy = Proxy(name, workdir, backends, Setup(cache=True), args.build)
                wrk(proxy, 1)  # fills the cache
                record("cache", name, wrk(proxy, args.seconds)[0])
                proxy.stop()
            for name in NAMES:
                print("round %d: %s TLS" % (round_index + 1, name), file=sys.stderr)
                proxy = Proxy(name, workdir, backends, Setup(tls=tls), args.build)
                record("tls_handshakes", name, handshakes_per_second(proxy, args.seconds))
                record("tls_rps", name, wrk(proxy, args.seconds, tls=True)[0])
                proxy.stop()
            for name in NAMES:
                print("round %d: %s 2 workers" % (round_index + 1, name), file=sys.stderr)
                proxy = Proxy(name, workdir, backends, Setup(workers=2), args.build,
                              cpus="%s,%s" % (PROXY_CPU, LOAD_CPU))
                rate_2 = wrk(proxy, args.seconds)[0]
                record("rps_2_workers", name, rate_2)
                record("scaling", name, rate_2 / (rows["rps"][name][-1] or 1))
                proxy.stop()
        for name in NAMES:
            print("counting: %s" % name, file=sys.stderr)
            record("instructions", name,
                   instructions(name, workdir, backends, args.build, args.requests))
            record("syscalls", name,
                   system_calls(name, workdir, backends, args.build, args.requests))
    finally:
        backend.terminate()
        backend.wait()

    medians = {row: {name: median(values) for name, values in by_name.items()}
               for row, by_name in rows.items()}

    def ratio(row, name):
        """The median over rounds of name's figure over HAProxy's in the same round."""
        pairs = zip(rows[row][name], rows[row]["haproxy"])
        return median([value / base for value, base in pairs if base])

    table = [
        ("rps", "proxied GET/s, keep-alive, 64 connections (wrk)", "%.0f", "≥ 1.15"),
        ("cpu_share", "proxy CPU use during that run (share of CPU 0)", "%.2f", ""),
        ("load_share", "load core use during that run (share of CPU 1: wrk + replicas)", "%.2f",
         ""),
        ("rps_per_cpu", "proxied GET/s per second of proxy CPU (capacity)", "%.0f", ""),
        ("p50", "p50 latency at 64 connections (ms)", "%.3f", ""),
        ("p99", "p99 latency at 64 connections (ms)", "%.3f", "≤ 0.9"),
        ("instructions", "instructions per proxied request (callgrind)", "%.0f", "≤ 0.55"),
        ("syscalls", "system calls per proxied request (strace -c -f)", "%.2f", "≤ 4.3 abs."),
        ("idle", "RSS per idle keep-alive client connection (KiB, %d conns)" % args.idle,
         "%.2f", "≤ 0.6 KiB abs."),
        ("cache", "cache-hit GET/s (HAProxy cache, nginx proxy_cache, confgate cache)", "%.0f",
         "≥ 1.5 × nginx"),
        ("tls_handshakes", "full TLS handshakes/s (openssl s_time -new)", "%.0f", ""),
        ("tls_rps", "keep-alive GET/s over TLS (wrk, 64 connections)", "%.0f", ""),
        ("rps_2_workers", "proxied GET/s with 2 workers on CPUs 0+1 (shares CPU 1 with load)",
         "%.0f", ""),
        ("scaling", "2 workers / 1 worker", "%.2f", ""),
    ]
    lines = ["# Side-by-side bench", "",
             "%d round(s) × %d s, interleaved; proxies on CPU %s, wrk/h2load and the replicas "
             "(%s) on CPU %s. Figures are medians over the rounds; ratios are medians of "
             "each round's ratio (the figures a ratio compares are taken seconds apart, one "
             "row at a time). Instructions and system calls: one run of %d minus one of %d "
             "requests (h2load, 64 connections), divided by the difference." %
             (args.rounds, args.seconds, PROXY_CPU,
              "bench/peers/replica.cc" if args.replicas == "bench" else "static nginx",
              LOAD_CPU, args.requests,
              args.requests // 5), "",
             "| figure | HAProxy | nginx | confgate | nginx / HAProxy | confgate / HAProxy "
             "| confgate target |",
             "|---|---|---|---|---|---|---|"]
    for row, label, fmt, target in table:
        values = medians[row]
        lines.append("| %s | %s | %s | %s | %.2f | %.2f | %s |" % (
            label, fmt % values["haproxy"], fmt % values["nginx"], fmt % values["confgate"],
            ratio(row, "nginx"), ratio(row, "confgate"), target))
    cache_ratio = median([c / n for c, n in zip(rows["cache"]["confgate"], rows["cache"]["nginx"])
                          if n])
    lines += ["", "confgate cache hits / nginx proxy_cache hits: %.2f" % cache_ratio]
    report = "\n".join(lines) + "\n"
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w") as handle:
        handle.write(report)
    print(report)
    print(json.dumps(rows))
    shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()

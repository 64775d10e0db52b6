#!/usr/bin/env python3
"""TLS rows of the side-by-side bench: confgate, nginx and HAProxy terminating TLS in front of
the same config-service replicas, configured alike (one worker, round robin, keep-alive to the
upstreams). Each proxy is pinned to CPU 0, the load generators and backends to CPU 1. Targets
are interleaved (A B C A B C ...) and each figure is the median of the rounds, also shown as a
ratio to HAProxy from the same run.

    bench/peers/tls_bench.py [--rounds 3] [--seconds 5] [--build build]

Needs nginx, haproxy, wrk and openssl (Debian packages nginx-light haproxy wrk openssl).
Writes bench/results/tls.md.
"""

import argparse
import json
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_port(port, timeout=10):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("nothing listens on %d" % port)


def pinned(cpu, command, **kwargs):
    return subprocess.Popen(["taskset", "-c", str(cpu)] + command, **kwargs)


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


def confgate_target(directory, port, backends, build, crt, key):
    path = os.path.join(directory, "confgate.yaml")
    servers = "\n".join("      - {address: 127.0.0.1:%d}" % b for b in backends)
    with open(path, "w") as handle:
        handle.write("""listeners:
  - address: 127.0.0.1:%d
    tls: {certificate: %s, private_key: %s}
admin: {address: 127.0.0.1:0}
workers: 1
access_log: {enabled: false}
upstreams:
  cs:
    balancer: round_robin
    servers:
%s
    keepalive: {max_idle_per_worker: 64, idle_timeout: 30s}
routes:
  - {match: {prefix: /}, upstream: cs}
""" % (port, crt, key, servers))
    return [os.path.join(ROOT, build, "confgate"), "-c", path]


def nginx_target(directory, port, backends, crt, key):
    path = os.path.join(directory, "nginx.conf")
    servers = "".join("server 127.0.0.1:%d; " % b for b in backends)
    with open(path, "w") as handle:
        handle.write("""worker_processes 1; daemon off; pid %(d)s/nginx.pid; error_log %(d)s/error.log;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path %(d)s; proxy_temp_path %(d)s; fastcgi_temp_path %(d)s;
  uwsgi_temp_path %(d)s; scgi_temp_path %(d)s;
  upstream cs { %(servers)s keepalive 64; }
  server {
    listen 127.0.0.1:%(port)d ssl;
    ssl_certificate %(crt)s; ssl_certificate_key %(key)s;
    ssl_protocols TLSv1.2 TLSv1.3;
    location / { proxy_pass http://cs; proxy_http_version 1.1; proxy_set_header Connection ""; }
  }
}
""" % {"d": directory, "servers": servers, "port": port, "crt": crt, "key": key})
    return ["nginx", "-p", directory, "-c", path]


def haproxy_target(directory, port, backends, pem):
    path = os.path.join(directory, "haproxy.cfg")
    servers = "\n".join("  server s%d 127.0.0.1:%d" % (i, b) for i, b in enumerate(backends))
    with open(path, "w") as handle:
        handle.write("""global
  nbthread 1
  maxconn 4096
defaults
  mode http
  timeout connect 1s
  timeout client 30s
  timeout server 30s
  option http-keep-alive
frontend fe
  bind 127.0.0.1:%d ssl crt %s
  default_backend be
backend be
  balance roundrobin
  http-reuse always
%s
""" % (port, pem, servers))
    return ["haproxy", "-f", path]


def handshakes_per_second(port, seconds):
    # Full handshakes only (-new): the cost of TLS session set-up.
    result = subprocess.run(
        ["taskset", "-c", "1", "openssl", "s_time", "-connect", "127.0.0.1:%d" % port, "-new",
         "-time", str(seconds)], capture_output=True, text=True)
    match = re.search(r"([\d.]+) connections/user sec", result.stdout)
    total = re.search(r"(\d+) connections in ([\d.]+)s", result.stdout)
    if total:
        return int(total.group(1)) / seconds
    return float(match.group(1)) if match else 0.0


def keepalive_requests_per_second(port, seconds):
    result = subprocess.run(
        ["taskset", "-c", "1", "wrk", "-t1", "-c32", "-d%ds" % seconds,
         "https://127.0.0.1:%d/v1/kv/app/bench" % port], capture_output=True, text=True)
    match = re.search(r"Requests/sec:\s+([\d.]+)", result.stdout)
    return float(match.group(1)) if match else 0.0


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=int, default=5)
    parser.add_argument("--build", default="build")
    args = parser.parse_args()
    for tool in ("nginx", "haproxy", "wrk", "openssl", "taskset"):
        if shutil.which(tool) is None:
            sys.exit("missing %s (apt-get install nginx-light haproxy wrk openssl)" % tool)

    directory = tempfile.mkdtemp(prefix="confgate-bench-")
    crt, key, pem = make_certificate(directory)
    seed = os.path.join(directory, "seed")
    with open(seed, "w") as handle:
        handle.write("app/bench=" + json.dumps({"feature": "on", "pad": "x" * 560}) + "\n")
    replicas = []
    backends = []
    for index in range(3):
        replica = pinned(1, [os.path.join(ROOT, args.build, "examples/config-service/config-service"),
                             "--port", "0", "--id", "r%d" % index, "--seed", seed],
                         stdout=subprocess.PIPE, text=True)
        backends.append(json.loads(replica.stdout.readline())["port"])
        replicas.append(replica)

    targets = {
        "confgate": lambda d, p: confgate_target(d, p, backends, args.build, crt, key),
        "nginx": lambda d, p: nginx_target(d, p, backends, crt, key),
        "haproxy": lambda d, p: haproxy_target(d, p, backends, pem),
    }
    results = {name: {"handshakes": [], "requests": []} for name in targets}
    try:
        for _ in range(args.rounds):
            for name, build_command in targets.items():
                target_dir = tempfile.mkdtemp(dir=directory)
                port = free_port()
                log = open(os.path.join(target_dir, "stderr.log"), "w")
                process = pinned(0, build_command(target_dir, port), stdout=subprocess.DEVNULL,
                                 stderr=log)
                try:
                    try:
                        wait_port(port)
                    except RuntimeError:
                        sys.exit("%s did not start:\n%s" % (
                            name, open(os.path.join(target_dir, "stderr.log")).read()))
                    time.sleep(0.3)
                    results[name]["handshakes"].append(handshakes_per_second(port, args.seconds))
                    results[name]["requests"].append(
                        keepalive_requests_per_second(port, args.seconds))
                finally:
                    process.terminate()
                    process.wait(timeout=20)
    finally:
        for replica in replicas:
            replica.terminate()

    medians = {name: {row: statistics.median(values) for row, values in rows.items()}
               for name, rows in results.items()}
    lines = ["# TLS bench (%d rounds x %d s, interleaved; proxies on CPU 0, load on CPU 1)" %
             (args.rounds, args.seconds), "",
             "| figure | HAProxy | nginx | confgate | confgate / HAProxy |",
             "|---|---|---|---|---|"]
    for row, label in (("handshakes", "full TLS handshakes/s (openssl s_time -new)"),
                       ("requests", "keep-alive GET/s over TLS (wrk, 32 connections)")):
        base = medians["haproxy"][row] or 1
        lines.append("| %s | %.0f | %.0f | %.0f | %.2f |" % (
            label, medians["haproxy"][row], medians["nginx"][row], medians["confgate"][row],
            medians["confgate"][row] / base))
    report = "\n".join(lines) + "\n"
    os.makedirs(os.path.join(ROOT, "bench", "results"), exist_ok=True)
    with open(os.path.join(ROOT, "bench", "results", "tls.md"), "w") as handle:
        handle.write(report)
    print(report)
    print(json.dumps(results))


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""The soak test: confgate in front of three examples/config-service replicas, holding many
keep-alive client connections at a steady request rate while replicas are killed (-9) and
restarted and the upstream file is reloaded, watching memory, descriptors and errors.

    bench/soak/run.sh [--duration 300] [--short]

What runs (everything on 127.0.0.1, ports picked free at run time):
  - 3 replicas started with --seed (the keys the clients read exist on every replica);
  - confgate with `workers: 2`, health checks, outlier detection, the default retries, a cached
    and an uncached read route, the access log to /dev/null, `max_connections` above the target;
  - 2 client processes (--clients), each an epoll loop over non-blocking sockets, together
    holding --connections keep-alive connections and sending --rate requests/s round robin over
    them: 65 % GET of seeded keys on an uncached route, 25 % GET of seeded keys on a cached route
    (default_ttl 0s: every read goes upstream, a stale copy answers only when every attempt
    failed), 5 % GET of a missing key (404 is the right answer), 5 % PUT;
  - faults: every --kill-every s one replica (in turn) gets SIGKILL and is restarted --down-for s
    later on the same port; every --reload-every s the upstream file is rewritten (atomic rename)
    with a harmless change (odd: the response timeout 5s <-> 6s; even: one host's weight 1 <-> 2,
    which replaces that host) and a reload is asked for, alternately by SIGHUP and POST /reload
    (the file watch sees the rename too, so each step reloads twice).

Replica ports are picked below the kernel's ephemeral range (ip_local_port_range): while a
replica is down, an outgoing connection (a client's, a health check's) could otherwise take its
port as a source port, or a connect to it could self-connect, and the restart could not bind.

Checks (exit 1 when one fails):
  - confgate is alive at every sample and at the end, and exits 0 on SIGTERM afterwards;
  - memory: RSS sampled every 2 s; the largest sample of the last third of the run is at most
    10 % above the sample at the middle (the start sample is taken once every connection has
    completed a request, but allocator arenas and caches settle during the first half);
  - descriptors: the count after the clients have closed and the upstream keep-alive pool has
    idled out (keepalive.idle_timeout) is at most the count before the clients connected plus
    one per host (a health check's connection that may be open at the moment of sampling; the
    figure is the smallest of 5 samples 100 ms apart, so it is usually exact);
  - errors: client-visible errors are tallied by cause (with confgate's reason and, on stderr,
    its log lines for the request id) and tied to the fault before them; the run fails only when
    they exceed 1 % of the requests. GET errors should be ~0: a GET that meets a killed replica
    is retried on another one, within the retry budget (at least 3 retries in flight per
    upstream), so only when more reads than that fail at the same instant does one get a 502. A
    PUT whose replica dies under it is not retried, by design;
  - connections held: the fewest open client connections sampled is at least 99 % of the target;
  - every reload succeeds (POST /reload answers 200; confgate counts no failed reload);
  - the clients achieve at least 50 % of the target rate (else the run did not soak anything;
    below 90 % is reported as a warning with the client's CPU use).

Writes bench/results/soak.md (or --out) unless --short.
"""

import argparse
import collections
import datetime
import errno
import heapq
import json
import math
import os
import random
import re
import resource
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
REPLICAS = 3
APP_KEYS, CACHED_KEYS, MISSING_KEYS, WRITE_KEYS = 100, 50, 50, 1000
# 20 slots: 13 uncached GET, 5 cached GET, 1 GET of a missing key, 1 PUT.
MIX = ["app"] * 13 + ["cached"] * 5 + ["missing"] + ["put"]
random.Random(7).shuffle(MIX)
EXPECTED = {"app": 200, "cached": 200, "missing": 404, "put": 200}
METHOD = {"app": "GET", "cached": "GET", "missing": "GET", "put": "PUT"}
# Latency histogram: geometric buckets from 50 us, factor 1.25 (about +-12 %).
HIST_BASE, HIST_FACTOR, HIST_BUCKETS = 50e-6, 1.25, 72


def seed_value(key):
    return json.dumps({"key": key, "feature_flags": {"a": True, "b": False},
                       "pad": "x" * 160}, separators=(",", ":"))


# ---------------------------------------------------------------------------------------------
# The client process: --client. Holds its share of the connections and sends its share of the
# rate; talks to the orchestrator by JSON lines (commands on stdin, reports on stdout).
# ---------------------------------------------------------------------------------------------

CONNECTING, IDLE, BUSY, CLOSED = range(4)


class Conn:
    __slots__ = ("sock", "fd", "state", "buf", "kind", "sent_at", "out", "head", "need",
                 "chunked", "warm")

    def __init__(self):
        self.sock = None
        self.fd = -1
        self.state = CLOSED
        self.buf = bytearray()
        self.kind = None
        self.sent_at = 0.0
        self.out = b""
        self.head = None
        self.need = -1
        self.chunked = False
        self.warm = False


class ProtocolError(Exception):
    pass


def chunked_length(buf, start):
    """Bytes of a complete chunked body starting at `start`, or None while incomplete."""
    pos = start
    while True:
        line_end = buf.find(b"\r\n", pos)
        if line_end < 0:
            return None
        size_text = bytes(buf[pos:line_end]).split(b";", 1)[0].strip()
        try:
            size = int(size_text, 16)
        except ValueError:
            raise ProtocolError("bad chunk size")
        pos = line_end + 2
        if size == 0:
            end = buf.find(b"\r\n\r\n", pos - 2)  # trailers end with an empty line
            if end < 0:
                return None
            return end + 4 - start
        if len(buf) < pos + size + 2:
            return None
        pos += size + 2


def client_main(args):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    need = args.connections + 256
    if soft < need:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, max(need, soft)), hard))
    requests = {
        "app": [("GET /v1/kv/app/k%03d HTTP/1.1\r\nHost: soak\r\n\r\n" % i).encode()
                for i in range(APP_KEYS)],
        "cached": [("GET /v1/kv/cached/k%03d HTTP/1.1\r\nHost: soak\r\n\r\n" % i).encode()
                   for i in range(CACHED_KEYS)],
        "missing": [("GET /v1/kv/app/missing-%03d HTTP/1.1\r\nHost: soak\r\n\r\n" % i).encode()
                    for i in range(MISSING_KEYS)],
        "put": [],
    }
    body = json.dumps({"written_by": "soak-client-%d" % args.client_id, "pad": "y" * 96})
    for i in range(WRITE_KEYS):
        requests["put"].append(
            ("PUT /v1/kv/writes/w%03d HTTP/1.1\r\nHost: soak\r\nContent-Type: application/json"
             "\r\nContent-Length: %d\r\n\r\n%s" % (i, len(body), body)).encode())

    ep = select.epoll()
    conns = [Conn() for _ in range(args.connections)]
    by_fd = {}
    address = ("127.0.0.1", args.port)
    stdin_fd = sys.stdin.fileno()
    os.set_blocking(stdin_fd, False)
    ep.register(stdin_fd, select.EPOLLIN)
    log_base = math.log(HIST_FACTOR)

    def new_stats():
        return {"sent": 0, "completed": 0, "ok": 0, "status": collections.Counter(),
                "errors": collections.Counter(), "idle_closed": collections.Counter(),
                "connect_errors": collections.Counter(), "stale": 0, "coalesced": 0,
                "close_header": 0, "reconnects": 0, "behind": 0, "no_idle": 0,
                "hist": [0] * HIST_BUCKETS, "error_reasons": collections.Counter(),
                "error_samples": []}

    stats = new_stats()
    warm_stats = stats
    phase = "warm"  # warm -> ready -> run -> stop -> (closed)
    seq = [args.client_id * 7]
    pending_connects = [0]
    reconnect_at = []  # heap of (time, index)
    to_open = list(range(args.connections))
    to_open.reverse()
    warm_done = [0]
    busy = set()

    def emit(event, **fields):
        fields["event"] = event
        fields["client"] = args.client_id
        sys.stdout.write(json.dumps(fields) + "\n")
        sys.stdout.flush()

    def open_count():
        return sum(1 for c in conns if c.state in (IDLE, BUSY))

    def start_connect(index):
        c = conns[index]
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setblocking(False)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        code = sock.connect_ex(address)
        c.sock, c.fd, c.state = sock, sock.fileno(), CONNECTING
        c.buf = bytearray()
        c.head, c.need, c.out = None, -1, b""
        by_fd[c.fd] = index
        pending_connects[0] += 1
        if code not in (0, errno.EINPROGRESS):
            stats["connect_errors"][errno.errorcode.get(code, str(code))] += 1
            drop(index, None)
            return
        ep.register(c.fd, select.EPOLLOUT | select.EPOLLIN)

    def drop(index, cause, now=None):
        """Closes connection `index`; a request in flight on it fails with `cause`."""
        c = conns[index]
        if c.state == CONNECTING:
            pending_connects[0] -= 1
        if c.state == BUSY:
            busy.discard(index)
            if cause is not None:
                stats["errors"]["%s %s" % (METHOD[c.kind], cause)] += 1
        elif c.state == IDLE and cause is not None:
            stats["idle_closed"][cause] += 1
        if c.fd >= 0:
            by_fd.pop(c.fd, None)
            try:
                ep.unregister(c.fd)
            except (OSError, ValueError):
                pass
            c.sock.close()
        c.sock, c.fd, c.state = None, -1, CLOSED
        c.buf = bytearray()
        if phase in ("warm", "ready", "run"):
            heapq.heappush(reconnect_at, ((now or time.monotonic()) + 0.1, index))

    def send(index, kind, now):
        c = conns[index]
        seq[0] += 1
        options = requests[kind]
        data = options[seq[0] % len(options)]
        c.kind, c.sent_at, c.state = kind, now, BUSY
        c.head, c.need, c.chunked = None, -1, False
        busy.add(index)
        stats["sent"] += 1
        try:
            written = c.sock.send(data)
        except (BlockingIOError, InterruptedError):
            written = 0
        except ConnectionResetError:
            drop(index, "connection reset", now)
            return
        except OSError as error:
            drop(index, "send error %s" % errno.errorcode.get(error.errno, error.errno), now)
            return
        if written < len(data):
            c.out = data[written:]
            ep.modify(c.fd, select.EPOLLIN | select.EPOLLOUT)

    def next_kind():
        return MIX[(seq[0] + 1) % len(MIX)]

    def complete(index, now, body=b""):
        c = conns[index]
        status, headers = c.head
        latency = now - c.sent_at
        method = METHOD[c.kind]
        stats["completed"] += 1
        stats["status"]["%s %d" % (method, status)] += 1
        if status == EXPECTED[c.kind]:
            stats["ok"] += 1
            if latency > 0:
                bucket = int(math.log(max(latency, HIST_BASE) / HIST_BASE) / log_base)
                stats["hist"][min(bucket, HIST_BUCKETS - 1)] += 1
            if c.kind == "cached" and "hit" in headers.get("cache-status", ""):
                # From the cache: stale-if-error carries the upstream's mode; a coalesced
                # waiter gets the leader's fresh fetch (marked stale too: default_ttl is 0s).
                stats["stale" if "x-confgate-mode" in headers else "coalesced"] += 1
        else:
            read_only = status == 503 and headers.get("x-confgate-mode") == "read-only"
            cause = "%s %d%s" % (method, status, " read-only" if read_only else "")
            stats["errors"][cause] += 1
            # confgate's own answers say why, and carry the request id its log uses.
            reason = body.decode("latin-1", "replace").strip().split("\n")[0][:80]
            stats["error_reasons"]["%s (%s)" % (cause, reason or "no body")] += 1
            if len(stats["error_samples"]) < 20:
                stats["error_samples"].append(
                    [time.time(), cause, headers.get("x-request-id", ""), reason])
        if not c.warm:
            c.warm = True
            warm_done[0] += 1
        busy.discard(index)
        c.state = IDLE
        if headers.get("connection", "").lower() == "close":
            stats["close_header"] += 1
            drop(index, None, now)

    def on_readable(index, now):
        c = conns[index]
        try:
            data = c.sock.recv(262144)
        except (BlockingIOError, InterruptedError):
            return
        except ConnectionResetError:
            drop(index, "connection reset", now)
            return
        except OSError as error:
            drop(index, "recv error %s" % errno.errorcode.get(error.errno, error.errno), now)
            return
        if not data:
            drop(index, "closed by proxy", now)
            return
        if c.state != BUSY:
            stats["idle_closed"]["unsolicited bytes"] += 1
            drop(index, None, now)
            return
        c.buf += data
        try:
            while c.state == BUSY:
                buf = c.buf
                if c.head is None:
                    end = buf.find(b"\r\n\r\n")
                    if end < 0:
                        if len(buf) > 65536:
                            raise ProtocolError("head too large")
                        return
                    lines = bytes(buf[:end]).decode("latin-1").split("\r\n")
                    parts = lines[0].split(" ", 2)
                    if len(parts) < 2 or not parts[0].startswith("HTTP/1."):
                        raise ProtocolError("bad status line")
                    status = int(parts[1])
                    headers = {}
                    for line in lines[1:]:
                        name, _, value = line.partition(":")
                        headers[name.strip().lower()] = value.strip()
                    del buf[:end + 4]
                    if 100 <= status < 200:
                        continue  # interim response
                    c.head = (status, headers)
                    if status in (204, 304):
                        c.need = 0
                    elif "chunked" in headers.get("transfer-encoding", "").lower():
                        c.chunked = True
                    elif "content-length" in headers:
                        c.need = int(headers["content-length"])
                    else:
                        raise ProtocolError("response without framing")
                if c.chunked:
                    length = chunked_length(buf, 0)
                    if length is None:
                        return
                else:
                    if len(buf) < c.need:
                        return
                    length = c.need
                body = bytes(buf[:min(length, 200)]) if c.head[0] != EXPECTED[c.kind] else b""
                del buf[:length]
                complete(index, now, body)
                if c.state == IDLE and buf:
                    stats["idle_closed"]["unsolicited bytes"] += 1
                    drop(index, None, now)
                    return
        except (ProtocolError, ValueError) as error:
            drop(index, "protocol error (%s)" % error, now)

    def on_event(fd, mask, now):
        index = by_fd.get(fd)
        if index is None:
            return
        c = conns[index]
        if c.state == CONNECTING:
            if not mask & (select.EPOLLOUT | select.EPOLLERR | select.EPOLLHUP):
                return
            code = c.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
            if code != 0:
                stats["connect_errors"][errno.errorcode.get(code, str(code))] += 1
                drop(index, None, now)
                return
            pending_connects[0] -= 1
            c.state = IDLE
            ep.modify(fd, select.EPOLLIN)
            if phase == "warm" and not c.warm:
                send(index, "app", now)
            elif phase in ("ready", "run"):
                if c.warm:
                    stats["reconnects"] += 1
                # A new connection must send a head within the proxy's header_timeout: the
                # first request goes at once (counted, though outside the schedule).
                send(index, next_kind(), now)
            return
        if mask & select.EPOLLOUT and c.out:
            try:
                written = c.sock.send(c.out)
            except (BlockingIOError, InterruptedError):
                written = 0
            except OSError:
                drop(index, "connection reset", now)
                return
            c.out = c.out[written:]
            if not c.out:
                ep.modify(fd, select.EPOLLIN)
        if mask & (select.EPOLLIN | select.EPOLLHUP | select.EPOLLERR):
            on_readable(index, now)

    def report(event="stats", **extra):
        usage = resource.getrusage(resource.RUSAGE_SELF)
        emit(event, open=open_count(), busy=len(busy), connecting=pending_connects[0],
             cpu=usage.ru_utime + usage.ru_stime,
             stats={key: (dict(value) if isinstance(value, collections.Counter) else value)
                    for key, value in stats.items()}, **extra)

    run_start = 0.0
    run_sent = 0
    run_cpu0 = 0.0
    run_elapsed = 0.0
    rr = 0
    last_report = 0.0
    last_timeout_scan = 0.0
    stop_deadline = None
    max_batch = max(50, args.rate // 50)
    connect_budget_time = time.monotonic()
    warm_reported = False
    pending_input = b""
    while True:
        now = time.monotonic()
        # Open connections: at most 256 connects in flight, about --connect-rate per second.
        if to_open and pending_connects[0] < 256:
            allowed = int((now - connect_budget_time) * args.connect_rate)
            if allowed > 0:
                connect_budget_time = now if allowed > 256 else \
                    connect_budget_time + allowed / args.connect_rate
                for _ in range(min(allowed, 256 - pending_connects[0], len(to_open))):
                    start_connect(to_open.pop())
        while reconnect_at and reconnect_at[0][0] <= now and pending_connects[0] < 256:
            _, index = heapq.heappop(reconnect_at)
            if conns[index].state == CLOSED and phase in ("warm", "ready", "run"):
                start_connect(index)
        timeout = 0.002 if phase == "run" or to_open or reconnect_at else 0.05
        for fd, mask in ep.poll(timeout):
            if fd == stdin_fd:
                try:
                    chunk = os.read(stdin_fd, 4096)
                except BlockingIOError:
                    continue
                if not chunk:
                    chunk = b"close\n"  # the orchestrator went away
                pending_input += chunk
                continue
            on_event(fd, mask, now)
        now = time.monotonic()
        while b"\n" in pending_input:
            line, pending_input = pending_input.split(b"\n", 1)
            command = line.decode().strip()
            if command == "run":
                stats = new_stats()
                phase, run_start, run_sent = "run", now, 0
                start_cpu = resource.getrusage(resource.RUSAGE_SELF)
                run_cpu0 = start_cpu.ru_utime + start_cpu.ru_stime
            elif command == "stop":
                phase = "stop"
                stop_deadline = now + args.timeout + 5
                run_elapsed = now - run_start
            elif command == "close":
                for index, c in enumerate(conns):
                    if c.fd >= 0:
                        by_fd.pop(c.fd, None)
                        ep.unregister(c.fd)
                        c.sock.close()
                        c.sock, c.fd, c.state = None, -1, CLOSED
                emit("closed")
                return 0
        if phase == "warm" and warm_done[0] >= args.connections and not warm_reported:
            warm_reported = True
            phase = "ready"
            emit("warm", open=open_count(), warm_errors=dict(warm_stats["errors"]),
                 connect_errors=dict(warm_stats["connect_errors"]))
        if phase == "run":
            due = int((now - run_start) * args.rate) - run_sent
            if due > args.rate // 2:
                # More than half a second behind: the client (or the machine) cannot keep up.
                # Skip rather than burst, and count it; the achieved rate shows it.
                stats["behind"] += due - args.rate // 2
                run_sent += due - args.rate // 2
                due = args.rate // 2
            for _ in range(min(due, max_batch)):
                for _attempt in range(len(conns)):
                    rr = (rr + 1) % len(conns)
                    if conns[rr].state == IDLE:
                        break
                else:
                    stats["no_idle"] += 1
                    break
                run_sent += 1
                send(rr, next_kind(), now)
        if now - last_timeout_scan >= 0.5:
            last_timeout_scan = now
            for index in [i for i in busy if now - conns[i].sent_at > args.timeout]:
                drop(index, "timeout (%ds)" % args.timeout, now)
        if phase == "stop" and (not busy or now > stop_deadline):
            usage = resource.getrusage(resource.RUSAGE_SELF)
            report("stopped", elapsed=run_elapsed,
                   run_cpu=usage.ru_utime + usage.ru_stime - run_cpu0,
                   unfinished=len(busy))
            phase = "stopped"
        if now - last_report >= 1.0 and phase in ("warm", "ready", "run"):
            last_report = now
            report(phase=phase, warm=warm_done[0])


# ---------------------------------------------------------------------------------------------
# The orchestrator.
# ---------------------------------------------------------------------------------------------

def log(message):
    print("[soak %s] %s" % (time.strftime("%H:%M:%S"), message), file=sys.stderr, flush=True)


def free_port_below_ephemeral(used):
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as handle:
            low = int(handle.read().split()[0])
    except (OSError, ValueError, IndexError):
        low = 32768
    rng = random.Random()
    for _ in range(200):
        port = rng.randrange(10000, low) if low > 11000 else 0
        if port in used:
            continue
        with socket.socket() as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            port = sock.getsockname()[1]
        if port not in used:
            used.add(port)
            return port
    raise RuntimeError("no free port found")


class Replica:
    def __init__(self, binary, index, port, seed_path):
        self.binary, self.index, self.port, self.seed_path = binary, index, port, seed_path
        self.id = "replica-%d" % (index + 1)
        self.process = None
        self.kills = 0
        self.restarts = 0
        self.bind_retries = 0

    def try_start(self):
        """Starts the replica on its port; False when it could not bind (yet)."""
        process = subprocess.Popen(
            [self.binary, "--port", str(self.port), "--id", self.id, "--seed", self.seed_path],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        ready, _, _ = select.select([process.stdout], [], [], 5)
        line = process.stdout.readline() if ready else ""
        if not line:
            process.kill()
            process.wait()
            process.stdout.close()
            return False
        if json.loads(line)["port"] != self.port:
            raise RuntimeError("%s bound %s, not %d" % (self.id, line, self.port))
        self.process = process
        return True

    def alive(self):
        return self.process is not None and self.process.poll() is None

    def kill(self):
        if self.process is not None:
            self.process.kill()
            self.process.wait()
            self.process.stdout.close()
            self.process = None

    def stop(self):
        if self.process is not None:
            self.process.terminate()
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
            self.process.stdout.close()
            self.process = None


class Confgate:
    def __init__(self, binary, config_path, log_path):
        self.log_path = log_path
        self.log_file = open(log_path, "w")
        self.messages = collections.Counter()
        self.problems = collections.deque(maxlen=40)  # warn/error lines worth showing
        self.port = None
        self.admin_port = None
        self._ready = threading.Event()
        self.process = subprocess.Popen([binary, "-c", config_path], stdout=subprocess.DEVNULL,
                                        stderr=subprocess.PIPE, text=True)
        self.pid = self.process.pid
        self._thread = threading.Thread(target=self._drain, daemon=True)
        self._thread.start()
        if not self._ready.wait(30):
            self.process.kill()
            raise RuntimeError("confgate did not start; see %s" % log_path)

    def _drain(self):
        for line in self.process.stderr:
            self.log_file.write(line)
            try:
                entry = json.loads(line)
            except ValueError:
                continue
            msg = entry.get("msg", "")
            self.messages[msg] += 1
            if msg == "admin listening":
                self.admin_port = int(entry["address"].rsplit(":", 1)[1])
            elif msg == "listening" and self.port is None:
                self.port = int(entry["address"].rsplit(":", 1)[1])
            elif msg == "started":
                self._ready.set()
            if entry.get("level") in ("error", "fatal") or msg in (
                    "accept failed; pausing accepts", "reload rejected; the running "
                    "configuration stays", "upstream mode changed"):
                self.problems.append(line.strip())
        self.log_file.flush()

    def alive(self):
        return self.process.poll() is None

    def admin(self, method, path, timeout=10):
        request = urllib.request.Request("http://127.0.0.1:%d%s" % (self.admin_port, path),
                                         data=b"" if method == "POST" else None, method=method)
        try:
            with urllib.request.urlopen(request, timeout=timeout) as reply:
                return reply.status, reply.read().decode()
        except urllib.error.HTTPError as error:
            return error.code, error.read().decode()

    def metrics(self):
        status, text = self.admin("GET", "/metrics")
        values = collections.defaultdict(float)
        if status != 200:
            return values
        for line in text.splitlines():
            if line.startswith("#") or not line.strip():
                continue
            name_labels, _, value = line.rpartition(" ")
            try:
                values[name_labels] = float(value)
            except ValueError:
                pass
        return values

    def rss_kib(self):
        with open("/proc/%d/status" % self.pid) as status:
            return int(re.search(r"VmRSS:\s+(\d+)", status.read()).group(1))

    def cpu_seconds(self):
        with open("/proc/%d/stat" % self.pid) as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def fd_count(self):
        return len(os.listdir("/proc/%d/fd" % self.pid))

    def min_fd_count(self, samples=5):
        counts = []
        for _ in range(samples):
            counts.append(self.fd_count())
            time.sleep(0.1)
        return min(counts)

    def fd_breakdown(self, replica_ports):
        """What the descriptors are: client / upstream / listening / other sockets, and the rest."""
        inodes = {}
        kinds = collections.Counter()
        for fd in os.listdir("/proc/%d/fd" % self.pid):
            try:
                target = os.readlink("/proc/%d/fd/%s" % (self.pid, fd))
            except OSError:
                continue
            match = re.match(r"socket:\[(\d+)\]", target)
            if match:
                inodes[match.group(1)] = fd
            elif target.startswith("anon_inode:"):
                kinds[target.split(":", 1)[1].strip("[]")] += 1
            elif target.startswith("pipe:"):
                kinds["pipe"] += 1
            else:
                kinds["file"] += 1
        found = set()
        for table in ("/proc/net/tcp", "/proc/net/tcp6"):
            try:
                lines = open(table).read().splitlines()[1:]
            except OSError:
                continue
            for line in lines:
                fields = line.split()
                inode = fields[9]
                if inode not in inodes or inode in found:
                    continue
                found.add(inode)
                local_port = int(fields[1].rsplit(":", 1)[1], 16)
                remote_port = int(fields[2].rsplit(":", 1)[1], 16)
                if fields[3] == "0A":
                    kinds["listening socket"] += 1
                elif local_port == self.port:
                    kinds["client connection"] += 1
                elif local_port == self.admin_port:
                    kinds["admin connection"] += 1
                elif remote_port in replica_ports:
                    kinds["upstream connection"] += 1
                else:
                    kinds["other tcp"] += 1
        kinds["other socket"] += len(inodes) - len(found)
        return {key: value for key, value in kinds.items() if value}


def write_seed(path):
    with open(path, "w") as handle:
        for i in range(APP_KEYS):
            handle.write("app/k%03d=%s\n" % (i, seed_value("app/k%03d" % i)))
        for i in range(CACHED_KEYS):
            handle.write("cached/k%03d=%s\n" % (i, seed_value("cached/k%03d" % i)))


def write_config(path, args, replicas, weights, response_timeout):
    servers = "\n".join("      - {address: 127.0.0.1:%d, weight: %d}" % (r.port, w)
                        for r, w in zip(replicas, weights))
    text = """# Written by bench/soak/soak.py; rewritten on every reload step.
listeners:
  - address: 127.0.0.1:0
admin: {address: 127.0.0.1:0}
workers: %(workers)d
limits:
  max_connections: %(max_connections)d
  idle_timeout: 120s
  drain_timeout: 5s
access_log: {enabled: true, path: /dev/null}
upstreams:
  config-service:
    balancer: weighted_round_robin
    servers:
%(servers)s
    health_check: {type: http, path: /health, interval: 1s, timeout: 500ms,
                   healthy_threshold: 2, unhealthy_threshold: 2}
    outlier_detection: {consecutive_5xx: 5, consecutive_gateway_failures: 3,
                        base_ejection_time: 5s, max_ejection_time: 30s,
                        max_ejection_percent: 50, min_available_hosts: 1}
    slow_start: 2s
    retries: {attempts: 2, on: [connect_failure, reset, timeout, 502, 503, 504],
              budget_percent: 20}
    timeouts: {connect: 1s, response: %(response)s}
    keepalive: {max_idle_per_worker: 64, idle_timeout: %(pool_idle)ds}
routes:
  - match: {prefix: /v1/kv/, query: index}
    upstream: config-service
    kind: watch
    timeouts: {response: 600s}
  - match: {prefix: /v1/kv/cached/}
    upstream: config-service
    kind: auto
    cache: {enabled: true, max_bytes: 8MiB, default_ttl: 0s, max_stale: 1h}
  - match: {prefix: /}
    upstream: config-service
    kind: auto
""" % {"workers": args.workers,
       "max_connections": args.connections + 1000, "servers": servers,
       "response": response_timeout, "pool_idle": args.pool_idle}
    temporary = path + ".tmp"
    with open(temporary, "w") as handle:
        handle.write(text)
    os.replace(temporary, path)  # atomic: the file watch never sees half a file


class Client:
    def __init__(self, index, args, port):
        command = [sys.executable, os.path.abspath(__file__), "--client",
                   "--client-id", str(index), "--port", str(port),
                   "--connections", str(args.connections // args.clients +
                                        (1 if index < args.connections % args.clients else 0)),
                   "--rate", str(args.rate // args.clients), "--timeout", str(args.timeout),
                   "--connect-rate", str(args.connect_rate // args.clients)]
        self.process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                        text=True, bufsize=1)
        self.latest = {}
        self.warm = None
        self.final = None
        self.closed = threading.Event()
        self.lock = threading.Lock()
        self.history = []  # (time, errors total)
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self):
        for line in self.process.stdout:
            try:
                message = json.loads(line)
            except ValueError:
                continue
            with self.lock:
                if message["event"] == "stats":
                    self.latest = message
                    errors = sum(message["stats"]["errors"].values())
                    self.history.append((time.monotonic(), errors,
                                         dict(message["stats"]["errors"])))
                elif message["event"] == "warm":
                    self.warm = message
                    self.latest = {"open": message["open"]}
                elif message["event"] == "stopped":
                    self.final = message
                elif message["event"] == "closed":
                    self.closed.set()
        self.closed.set()

    def command(self, text):
        try:
            self.process.stdin.write(text + "\n")
            self.process.stdin.flush()
        except (BrokenPipeError, OSError):
            pass


class CounterTotals:
    """Sums confgate's counters across resets, as Prometheus' increase() does: an upstream's
    counters carry over a reload, but a host whose weight changed is a new host whose per-host
    counters start at 0 again."""

    PREFIXES = ("confgate_requests_total", "confgate_retries_total",
                "confgate_upstream_host_ejections_total", "confgate_upstream_requests_total",
                "confgate_config_reloads_total")

    def __init__(self, baseline):
        self.last = {k: v for k, v in baseline.items() if k.startswith(self.PREFIXES)}
        self.total = collections.defaultdict(float)
        self.resets = 0

    def add(self, metrics):
        for key, value in metrics.items():
            if not key.startswith(self.PREFIXES):
                continue
            previous = self.last.get(key, 0.0)
            if value < previous:
                self.resets += 1
                self.total[key] += value
            else:
                self.total[key] += value - previous
            self.last[key] = value
        for key in list(self.last):
            if key not in metrics:  # the series went away (a reset to nothing)
                self.last[key] = 0.0

    def sum(self, prefix, contains=""):
        return sum(v for k, v in self.total.items() if k.startswith(prefix) and contains in k)


def merge_stats(reports):
    total = {"sent": 0, "completed": 0, "ok": 0, "status": collections.Counter(),
             "errors": collections.Counter(), "idle_closed": collections.Counter(),
             "connect_errors": collections.Counter(), "stale": 0, "coalesced": 0,
             "close_header": 0, "reconnects": 0, "behind": 0, "no_idle": 0,
             "hist": [0] * HIST_BUCKETS, "error_reasons": collections.Counter(),
             "error_samples": []}
    for report in reports:
        stats = report["stats"]
        for key, value in stats.items():
            if key == "hist":
                total["hist"] = [a + b for a, b in zip(total["hist"], value)]
            elif key == "error_samples":
                total[key] += value
            elif isinstance(value, dict):
                total[key].update(value)
            else:
                total[key] += value
    return total


def percentile(hist, fraction):
    count = sum(hist)
    if count == 0:
        return 0.0
    target = fraction * count
    seen = 0
    for index, value in enumerate(hist):
        seen += value
        if seen >= target:
            return HIST_BASE * HIST_FACTOR ** (index + 1) * 1000  # bucket's upper edge, ms
    return HIST_BASE * HIST_FACTOR ** HIST_BUCKETS * 1000


def git_revision():
    try:
        revision = subprocess.run(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"],
                                  capture_output=True, text=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", ROOT, "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True).stdout.strip()
        return revision + (" + uncommitted changes" if dirty else "")
    except OSError:
        return "?"


def run(args):
    confgate_bin = os.environ.get("CONFGATE_BIN") or os.path.join(ROOT, "build", "confgate")
    service_bin = os.environ.get("CONFIG_SERVICE_BIN") or os.path.join(
        ROOT, "build", "examples", "config-service", "config-service")
    for binary in (confgate_bin, service_bin):
        if not os.access(binary, os.X_OK):
            sys.exit("soak: %s is missing (bench/soak/run.sh builds it)" % binary)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    need = args.connections + 1500  # confgate: the clients, the upstream pool, its own files
    if hard < need:
        sys.exit("soak: need %d descriptors for confgate but the hard limit is %d; raise it "
                 "(ulimit -Hn) or pass --connections" % (need, hard))
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))  # inherited by every child
    if args.connections / (args.rate or 1) > 60:
        sys.exit("soak: each connection would wait %.0f s between requests (idle_timeout is "
                 "120 s); raise --rate" % (args.connections / args.rate))

    workdir = tempfile.mkdtemp(prefix="confgate-soak-")
    seed_path = os.path.join(workdir, "seed.txt")
    config_path = os.path.join(workdir, "confgate.yaml")
    write_seed(seed_path)
    used_ports = set()
    replicas = [Replica(service_bin, i, free_port_below_ephemeral(used_ports), seed_path)
                for i in range(REPLICAS)]
    proxy = None
    clients = []
    failures = []
    warnings = []
    try:
        for replica in replicas:
            for _ in range(20):
                if replica.try_start():
                    break
                replica.port = free_port_below_ephemeral(used_ports)
            else:
                raise RuntimeError("could not start %s" % replica.id)
        weights = [1] * REPLICAS
        response_timeout = "5s"
        write_config(config_path, args, replicas, weights, response_timeout)
        # The listener stays `127.0.0.1:0` in every rewrite: reloads compare listeners by their
        # configured address, so it is kept (with the port it got) rather than reopened.
        proxy = Confgate(confgate_bin, config_path, os.path.join(workdir, "confgate.log"))
        deadline = time.time() + 30
        while proxy.admin("GET", "/readyz")[0] != 200:
            if time.time() > deadline:
                raise RuntimeError("confgate never became ready")
            time.sleep(0.1)
        time.sleep(1.0)  # a round of health checks; their connections are closed again
        replica_ports = {r.port for r in replicas}
        fds_before = proxy.min_fd_count()
        fds_before_kinds = proxy.fd_breakdown(replica_ports)
        rss_before = proxy.rss_kib()
        log("confgate pid %d on port %d (admin %d), %d descriptors before clients; replicas "
            "on %s; work dir %s" % (proxy.pid, proxy.port, proxy.admin_port, fds_before,
                                   ", ".join(str(r.port) for r in replicas), workdir))

        log("opening %d connections from %d client processes" % (args.connections,
                                                                 args.clients))
        clients_started = time.monotonic()
        clients = [Client(i, args, proxy.port) for i in range(args.clients)]
        warm_deadline = time.monotonic() + max(120, args.connections / 100)
        while not all(c.warm for c in clients):
            if time.monotonic() > warm_deadline or not proxy.alive() or \
                    any(c.process.poll() is not None for c in clients):
                opened = sum(c.latest.get("open", 0) for c in clients)
                warmed = sum(c.latest.get("warm", 0) for c in clients)
                raise RuntimeError("clients did not get warm: %d open, %d warm; confgate %s"
                                   % (opened, warmed, "alive" if proxy.alive() else "died"))
            time.sleep(0.2)
        warm_errors = collections.Counter()
        warm_connect_errors = collections.Counter()
        for c in clients:
            warm_errors.update(c.warm["warm_errors"])
            warm_connect_errors.update(c.warm["connect_errors"])
        time.sleep(0.5)
        rss_start = proxy.rss_kib()
        fds_start = proxy.fd_count()
        open_start = sum(c.warm["open"] for c in clients)
        start_metrics = proxy.metrics()
        counters = CounterTotals(start_metrics)  # the warm-up requests are not counted
        active_start = start_metrics.get("confgate_downstream_connections_active", 0)
        log("warm: %d connections open, confgate RSS %.1f MiB, %d descriptors; running %d s at "
            "%d requests/s" % (open_start, rss_start / 1024, fds_start, args.duration, args.rate))

        # The run: faults and reloads on a schedule, samples every 2 s.
        cpu_start = proxy.cpu_seconds()
        t0 = time.monotonic()
        for c in clients:
            c.command("run")
        events = []
        kill_at = args.kill_every
        while kill_at < args.duration - args.down_for:
            heapq.heappush(events, (kill_at, "kill", None))
            kill_at += args.kill_every
        reload_at = args.reload_every
        while reload_at < args.duration:
            heapq.heappush(events, (reload_at, "reload", None))
            reload_at += args.reload_every
        samples = []  # (t, rss_kib, fds, client-side open connections)
        kills = []  # (t, replica)
        restarts = []
        reload_times = []
        reload_steps = 0
        kill_index = 0
        triggers = collections.Counter()
        post_failures = []
        next_sample = 0.0
        died_at = None
        while True:
            now = time.monotonic() - t0
            if now >= args.duration:
                break
            while events and events[0][0] <= now:
                _, action, target = heapq.heappop(events)
                if action == "kill":
                    replica = replicas[kill_index % REPLICAS]
                    kill_index += 1
                    replica.kill()
                    replica.kills += 1
                    kills.append((now, replica.id))
                    heapq.heappush(events, (now + args.down_for, "restart", replica.index))
                elif action == "restart":
                    replica = replicas[target]
                    if replica.try_start():
                        replica.restarts += 1
                        restarts.append(now)
                    else:
                        replica.bind_retries += 1
                        if replica.bind_retries > 200:
                            raise RuntimeError("%s cannot rebind port %d" % (replica.id,
                                                                            replica.port))
                        heapq.heappush(events, (now + 0.25, "restart", target))
                elif action == "reload":
                    reload_steps += 1
                    if reload_steps % 2:
                        response_timeout = "6s" if response_timeout == "5s" else "5s"
                    else:
                        host = (reload_steps // 2) % REPLICAS
                        weights[host] = 3 - weights[host]
                    write_config(config_path, args, replicas, weights, response_timeout)
                    reload_times.append(now)
                    if reload_steps % 2:
                        proxy.process.send_signal(signal.SIGHUP)
                        triggers["SIGHUP"] += 1
                    else:
                        triggers["POST /reload"] += 1
                        try:
                            status, body = proxy.admin("POST", "/reload")
                        except OSError as error:
                            status, body = 0, str(error)
                        if status != 200:
                            post_failures.append("%d %s" % (status, body.strip()[:200]))
            if now >= next_sample:
                next_sample += 2.0
                if not proxy.alive():
                    died_at = now
                    break
                for c in clients:
                    if c.process.poll() is not None:
                        raise RuntimeError("client %d exited with %s" % (
                            clients.index(c), c.process.poll()))
                opened = sum(c.latest.get("open", 0) for c in clients)
                samples.append((now, proxy.rss_kib(), proxy.fd_count(), opened))
                counters.add(proxy.metrics())
            time.sleep(0.05)
        run_elapsed = time.monotonic() - t0
        cpu_run = proxy.cpu_seconds() - cpu_start if proxy.alive() else 0.0

        # The end: replicas back, clients stop (in-flight requests finish), samples, close.
        for replica in replicas:
            attempts = 0
            while not replica.alive():
                if replica.try_start():
                    replica.restarts += 1
                    break
                attempts += 1
                replica.bind_retries += 1
                if attempts > 40:
                    raise RuntimeError("%s cannot rebind port %d" % (replica.id, replica.port))
                time.sleep(0.25)
        for c in clients:
            c.command("stop")
        stop_deadline = time.monotonic() + args.timeout + 15
        while not all(c.final for c in clients) and time.monotonic() < stop_deadline:
            time.sleep(0.1)
        alive_at_end = proxy.alive()
        rss_end = proxy.rss_kib() if alive_at_end else 0
        fds_end_with_clients = proxy.fd_count() if alive_at_end else 0
        open_end = sum(c.final["open"] for c in clients if c.final)
        metrics_end = proxy.metrics() if alive_at_end else {}
        counters.add(metrics_end)
        active_end = metrics_end.get("confgate_downstream_connections_active", 0)
        for c in clients:
            c.command("close")
        for c in clients:
            c.closed.wait(30)
            try:
                c.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                c.process.kill()
        fds_after_close = fds_after_idle = None
        fds_after_close_kinds = fds_after_idle_kinds = {}
        if proxy.alive():
            deadline = time.monotonic() + 15
            while proxy.metrics().get("confgate_downstream_connections_active", 0) > 0 and \
                    time.monotonic() < deadline:
                time.sleep(0.2)
            time.sleep(0.3)
            fds_after_close = proxy.fd_count()
            fds_after_close_kinds = proxy.fd_breakdown(replica_ports)
            # Pooled upstream connections close after keepalive.idle_timeout without traffic.
            deadline = time.monotonic() + args.pool_idle + 5
            while time.monotonic() < deadline:
                if proxy.min_fd_count() <= fds_before:
                    break
                time.sleep(0.5)
            fds_after_idle = proxy.min_fd_count()
            fds_after_idle_kinds = proxy.fd_breakdown(replica_ports)
        metrics = proxy.metrics() if proxy.alive() else metrics_end
        counters.add(metrics)
        alive_before_stop = proxy.alive()
        exit_code = None
        if alive_before_stop:
            proxy.process.send_signal(signal.SIGTERM)
            try:
                exit_code = proxy.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proxy.process.kill()
                exit_code = "did not exit within 20 s"
        else:
            exit_code = proxy.process.poll()
        proxy._thread.join(timeout=5)

        # ----- figures -----
        finals = [c.final or c.latest for c in clients]
        total = merge_stats([f for f in finals if f])
        client_cpu = sum(f.get("run_cpu", 0) for f in finals if f)
        achieved = total["completed"] / run_elapsed if run_elapsed else 0
        sent_rate = total["sent"] / run_elapsed if run_elapsed else 0
        errors = total["errors"]
        error_count = sum(errors.values())
        get_errors = sum(v for k, v in errors.items() if k.startswith("GET"))
        put_errors = sum(v for k, v in errors.items() if k.startswith("PUT"))
        min_open = min((s[3] for s in samples), default=0)
        mid_sample = min(samples, key=lambda s: abs(s[0] - run_elapsed / 2)) if samples else None
        last_third = [s for s in samples if s[0] >= run_elapsed * 2 / 3]
        rss_mid = mid_sample[1] if mid_sample else 0
        rss_last_max = max((s[1] for s in last_third), default=0)
        rss_growth = (rss_last_max / rss_mid - 1) * 100 if rss_mid else 0.0
        rss_max = max([s[1] for s in samples] + [rss_start, rss_end])
        # Errors tied to the fault before them (the clients report once a second): within 2 s
        # after a kill, a restart or a reload, else "elsewhere" (while a replica is down, or not
        # near any fault).
        attributed = collections.Counter()
        history = []
        for c in clients:
            previous = 0
            for when, count, _ in c.history:
                if count > previous:
                    history.append((when - t0, count - previous))
                previous = count
        for when, count in history:
            if any(0 <= when - k <= 2 for k, _ in kills):
                attributed["<= 2 s after a kill"] += count
            elif any(0 <= when - r <= 2 for r in restarts):
                attributed["<= 2 s after a restart"] += count
            elif any(0 <= when - r <= 2 for r in reload_times):
                attributed["<= 2 s after a reload"] += count
            else:
                attributed["elsewhere"] += count
        reload_ok = metrics.get('confgate_config_reloads_total{result="success"}', 0)
        reload_failed = metrics.get('confgate_config_reloads_total{result="failure"}', 0)
        retries = counters.sum("confgate_retries_total")
        ejections = counters.sum("confgate_upstream_host_ejections_total")
        proxy_codes = collections.Counter()
        for key, value in counters.total.items():
            if key.startswith("confgate_requests_total") and 'code="' in key:
                proxy_codes[re.search(r'code="(\d+)"', key).group(1)] += int(value)

        # ----- checks -----
        def check(name, rule, passed, detail):
            checks.append((name, rule, "pass" if passed else "**FAIL**", detail))
            if not passed:
                failures.append("%s: %s" % (name, detail))

        checks = []
        check("confgate alive", "running at every sample and at the end; exit 0 on SIGTERM",
              died_at is None and alive_at_end and alive_before_stop and exit_code == 0,
              "exit %s" % exit_code if died_at is None else
              "died at t=%.0f s (exit %s)" % (died_at, proxy.process.poll()))
        check("memory", "max RSS of the last third <= 1.10 x RSS at the middle",
              rss_mid > 0 and rss_last_max <= rss_mid * 1.10,
              "%.1f MiB vs %.1f MiB (%+.1f %%)" % (rss_last_max / 1024, rss_mid / 1024,
                                                   rss_growth))
        check("descriptors", "after clients closed and the pool idled out <= before clients "
              "+ %d (health-check connections)" % REPLICAS,
              fds_after_idle is not None and fds_after_idle <= fds_before + REPLICAS,
              "%s vs %d" % ("-" if fds_after_idle is None else fds_after_idle, fds_before))
        check("errors", "client-visible errors <= 1 % of requests",
              error_count <= 0.01 * max(total["sent"], 1),
              "%d of %d (%.3f %%); GET %d, PUT %d" % (
                  error_count, total["sent"], 100.0 * error_count / max(total["sent"], 1),
                  get_errors, put_errors))
        check("connections held", "fewest open client connections sampled >= 99 % of target",
              min_open >= 0.99 * args.connections,
              "%d of %d" % (min_open, args.connections))
        check("reloads", "every reload succeeds", not post_failures and reload_failed == 0 and
              reload_ok >= sum(triggers.values()),
              "%d succeeded, %d failed%s" % (reload_ok, reload_failed,
                                              "; POST: " + "; ".join(post_failures)
                                              if post_failures else ""))
        check("load achieved", "completed requests/s >= 50 % of the target",
              achieved >= 0.5 * args.rate, "%.0f of %d/s" % (achieved, args.rate))
        if achieved < 0.9 * args.rate:
            warnings.append("the clients reached only %.0f of %d requests/s (client CPU %.0f %% "
                            "of one core, %d sends skipped behind schedule, %d with no idle "
                            "connection): the load was lighter than asked" % (
                                achieved, args.rate, 100 * client_cpu / run_elapsed,
                                total["behind"], total["no_idle"]))
        if get_errors:
            warnings.append("%d GET errors: reads should be retried on another replica" %
                            get_errors)

        # ----- report -----
        def mib(kib):
            return "%.1f" % (kib / 1024)

        def counter_text(counter):
            return ", ".join("%s: %d" % (k, v) for k, v in sorted(counter.items())) or "none"

        open_mid = mid_sample[3] if mid_sample else 0
        rows = [
            ("duration (s)", "%.0f (+ %.1f s opening the connections, one request on each)" % (
                run_elapsed, t0 - clients_started)),
            ("client connections: target / open at start / middle / end / fewest sampled",
             "%d / %d / %d / %d / %d" % (args.connections, open_start, open_mid, open_end,
                                         min_open)),
            ("confgate's open client connections (metric) at start / end",
             "%d / %d" % (active_start, active_end)),
            ("reconnects; connections closed by confgate while idle",
             "%d; %s" % (total["reconnects"], counter_text(total["idle_closed"]))),
            ("requests sent; completed", "%d; %d" % (total["sent"], total["completed"])),
            ("requests/s: target / sent / completed", "%d / %.0f / %.0f" % (
                args.rate, sent_rate, achieved)),
            ("latency of good answers p50 / p99 / p99.9 (ms)", "%.2f / %.2f / %.2f" % (
                percentile(total["hist"], 0.5), percentile(total["hist"], 0.99),
                percentile(total["hist"], 0.999))),
            ("responses by status", counter_text(total["status"])),
            ("client-visible errors by cause", counter_text(errors)),
            ("confgate's reason for its error answers", counter_text(total["error_reasons"])),
            ("errors by when they happened", counter_text(attributed)),
            ("errors / requests", "%.4f %%" % (100.0 * error_count / max(total["sent"], 1))),
            ("cached GETs answered from the cache: stale-if-error / coalesced", "%d / %d" % (
                total["stale"], total["coalesced"])),
            ("responses with Connection: close", "%d" % total["close_header"]),
            ("warm-up errors; connect errors", "%s; %s" % (
                counter_text(warm_errors),
                counter_text(warm_connect_errors + total["connect_errors"]))),
            ("replica kills / restarts (bind retries)", "%d / %d (%d)" % (
                sum(r.kills for r in replicas), sum(r.restarts for r in replicas),
                sum(r.bind_retries for r in replicas))),
            ("reload triggers; reloads counted by confgate (incl. file watch)", "%s; %d ok, %d "
             "failed" % (counter_text(triggers), reload_ok, reload_failed)),
            ("confgate: retries sent / host ejections / upstream mode changes", "%d / %d / %d" % (
                retries, ejections, proxy.messages["upstream mode changed"])),
            ("confgate answers by code (requests_total, summed over 2 s scrapes across resets)",
             "%s (%d in all; %d counter resets seen)" % (", ".join(
                 "%s: %d" % item for item in sorted(proxy_codes.items())),
                 sum(proxy_codes.values()), counters.resets)),
            ("confgate RSS (MiB): before clients / start / middle / end / max", "%s / %s / %s / "
             "%s / %s" % (mib(rss_before), mib(rss_start), mib(rss_mid), mib(rss_end),
                          mib(rss_max))),
            ("RSS growth: max of last third vs middle", "%+.1f %%" % rss_growth),
            ("RSS over the run (MiB, t in s)", ", ".join(
                "%.0f: %s" % (samples[i][0], mib(samples[i][1]))
                for i in sorted(set(range(0, len(samples), max(1, len(samples) // 10))) |
                                {len(samples) - 1}) if samples)),
            ("confgate fds: before clients / start / most during the run / end (clients open) / "
             "clients closed / pool idled out", "%d / %d / %d / %d / %s / %s" % (
                 fds_before, fds_start, max((s[2] for s in samples), default=0),
                 fds_end_with_clients, "-" if fds_after_close is None else fds_after_close,
                 "-" if fds_after_idle is None else fds_after_idle)),
            ("fds before clients, by kind", counter_text(fds_before_kinds)),
            ("fds after clients closed, by kind",
             counter_text(fds_after_close_kinds) if fds_after_close is not None else "-"),
            ("fds after the pool idled out, by kind",
             counter_text(fds_after_idle_kinds) if fds_after_idle is not None else "-"),
            ("CPU (% of one core): confgate / clients", "%.0f / %.0f" % (
                100 * cpu_run / run_elapsed, 100 * client_cpu / run_elapsed)),
            ("load average at the end (1 / 5 min), cores", "%.2f / %.2f, %d" % (
                os.getloadavg()[0], os.getloadavg()[1], os.cpu_count())),
        ]
        lines = ["# Soak test", "",
                 "%s, confgate %s (binary built %s), %d workers; %d replicas (one killed every "
                 "%d s, back after %d s); reload every %d s; %d client processes. "
                 "`bench/soak/run.sh%s`." % (
                     datetime.datetime.now().strftime("%Y-%m-%d %H:%M"), git_revision(),
                     datetime.datetime.fromtimestamp(os.path.getmtime(confgate_bin)).strftime(
                         "%H:%M"),
                     args.workers, REPLICAS, args.kill_every, args.down_for, args.reload_every,
                     args.clients, " --short" if args.short else
                     (" --duration %d" % args.duration if args.duration != 300 else "")), "",
                 "| figure | value |", "|---|---|"]
        lines += ["| %s | %s |" % row for row in rows]
        lines += ["", "| check | rule | result | detail |", "|---|---|---|---|"]
        lines += ["| %s | %s | %s | %s |" % c for c in checks]
        if warnings:
            lines += [""] + ["Warning: %s." % w for w in warnings]
        if proxy.problems:
            lines += ["", "Last warnings from confgate's log (%d lines; counts by message: "
                      "%s):" % (len(proxy.problems), counter_text(collections.Counter(
                          {k: v for k, v in proxy.messages.items()
                           if k in ("retrying on another host", "host ejected",
                                    "upstream connect failed", "host marked down by health "
                                    "checks", "upstream mode changed")}))), "", "```"]
            lines += list(proxy.problems)[-8:] + ["```"]
        report = "\n".join(lines) + "\n"
        print(report)
        if total["error_samples"]:
            # On stderr, for whoever digs: each error answer and what confgate logged about it.
            log_lines = open(proxy.log_path).read().splitlines()
            for when, cause, request_id, reason in total["error_samples"]:
                log("error at %s: %s (%s), request id %s" % (
                    datetime.datetime.fromtimestamp(when).strftime("%H:%M:%S.%f")[:-3], cause,
                    reason, request_id or "-"))
                for line in log_lines:
                    if request_id and request_id in line:
                        log("  confgate: %s" % line)
        if not args.short and args.out:
            os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
            with open(args.out, "w") as handle:
                handle.write(report)
            log("wrote %s" % args.out)
    except Exception as error:  # pylint: disable=broad-except
        failures.append("soak harness: %s" % error)
        if proxy is not None and proxy.process.poll() is not None:
            failures.append("confgate exited with %s" % proxy.process.poll())
    finally:
        for c in clients:
            if c.process.poll() is None:
                c.process.kill()
                c.process.wait()
        if proxy is not None and proxy.process.poll() is None:
            proxy.process.kill()
            proxy.process.wait()
        for replica in replicas:
            replica.stop()
    if failures:
        for failure in failures:
            log("FAILED: %s" % failure)
        log("kept the work dir (confgate.log, confgate.yaml): %s" % workdir)
        return 1
    if args.keep:
        log("work dir: %s" % workdir)
    else:
        shutil.rmtree(workdir, ignore_errors=True)
    log("passed")
    return 0


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=int, default=300, help="seconds of load (300)")
    parser.add_argument("--short", action="store_true", help="30 s, printed only (for CI)")
    parser.add_argument("--connections", type=int, default=10000)
    parser.add_argument("--rate", type=int, default=3000, help="requests/s in total")
    parser.add_argument("--clients", type=int, default=2, help="client processes")
    parser.add_argument("--workers", type=int, default=2, help="confgate workers")
    parser.add_argument("--kill-every", type=float, default=7.0)
    parser.add_argument("--down-for", type=float, default=3.0)
    parser.add_argument("--reload-every", type=float, default=10.0)
    parser.add_argument("--timeout", type=int, default=20, help="client request timeout (s)")
    parser.add_argument("--connect-rate", type=int, default=4000,
                        help="new connections/s while opening")
    parser.add_argument("--pool-idle", type=int, default=5,
                        help="confgate's keepalive.idle_timeout (s)")
    parser.add_argument("--out", default=os.path.join(ROOT, "bench", "results", "soak.md"))
    parser.add_argument("--keep", action="store_true", help="keep the work dir")
    # The client process.
    parser.add_argument("--client", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--client-id", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.client:
        return client_main(args)
    if args.short:
        args.duration = 30
    return run(args)


if __name__ == "__main__":
    sys.exit(main())

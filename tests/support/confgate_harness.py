"""Helpers for integration tests: real config-service replicas and a real confgate process,
all on 127.0.0.1 with ephemeral ports."""

import json
import os
import signal
import socket
import struct
import subprocess
import tempfile
import threading
import time
import http.client
import urllib.error
import urllib.request

CONFGATE_BIN = os.environ.get("CONFGATE_BIN", "")
CONFIG_SERVICE_BIN = os.environ.get("CONFIG_SERVICE_BIN", "")
SOURCE_DIR = os.environ.get("CONFGATE_SOURCE_DIR",
                            os.path.join(os.path.dirname(__file__), "..", ".."))

SANITIZER_MARKERS = ("WARNING: ThreadSanitizer", "ERROR: AddressSanitizer", "ERROR: LeakSanitizer",
                     "runtime error:")

# Under ASan + UBSan or TSan confgate is about 3x slower: upper time bounds stretch, lower ones
# do not.
SLOW = 3.0 if os.environ.get("CONFGATE_SANITIZED") else 1.0


class Replica:
    def __init__(self, replica_id, extra_args=()):
        self.id = replica_id
        self.process = subprocess.Popen(
            [CONFIG_SERVICE_BIN, "--port", "0", "--id", replica_id, *extra_args],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        line = self.process.stdout.readline()
        if not line:
            raise RuntimeError("config-service %s did not start" % replica_id)
        self.port = json.loads(line)["port"]
        self.address = "127.0.0.1:%d" % self.port

    def get_json(self, path):
        with urllib.request.urlopen("http://%s%s" % (self.address, path), timeout=5) as reply:
            return json.loads(reply.read())

    def stats(self):
        return self.get_json("/stats")

    def debug_requests(self):
        return self.get_json("/debug/requests")

    def fault(self, mode, delay_ms=None):
        query = "mode=%s" % mode
        if delay_ms is not None:
            query += "&delay_ms=%d" % delay_ms
        request = urllib.request.Request(
            "http://%s/fault?%s" % (self.address, query), data=b"", method="POST")
        urllib.request.urlopen(request, timeout=5).read()

    def put(self, key, value):
        request = urllib.request.Request(
            "http://%s/v1/kv/%s" % (self.address, key), data=value.encode(), method="PUT")
        urllib.request.urlopen(request, timeout=5).read()

    def stop(self):
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process.stdout.close()


class Proxy:
    def __init__(self, config_path, args=()):
        self.process = subprocess.Popen(
            [CONFGATE_BIN, "-c", config_path, *args],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self._stdout = []
        self._stderr = []
        self._lock = threading.Lock()
        self._listening = threading.Event()
        self.port = None
        self.admin_port = None
        self._threads = [
            threading.Thread(target=self._drain, args=(self.process.stdout, self._stdout),
                             daemon=True),
            threading.Thread(target=self._drain, args=(self.process.stderr, self._stderr),
                             daemon=True),
        ]
        for thread in self._threads:
            thread.start()
        if not self._listening.wait(10):
            self.kill()
            raise RuntimeError("confgate did not start:\n" + "\n".join(self.stderr_lines()))

    def _drain(self, stream, sink):
        for line in stream:
            line = line.rstrip("\n")
            with self._lock:
                sink.append(line)
            if sink is self._stderr and self.port is None:
                try:
                    entry = json.loads(line)
                except ValueError:
                    continue
                if entry.get("msg") == "admin listening":
                    self.admin_port = int(entry["address"].rsplit(":", 1)[1])
                if entry.get("msg") == "listening":
                    self.port = int(entry["address"].rsplit(":", 1)[1])
                    self._listening.set()

    def access_log(self, count=1, timeout=3.0):
        """At least `count` parsed access-log entries (waits for the periodic flush)."""
        deadline = time.time() + timeout
        while True:
            with self._lock:
                lines = list(self._stdout)
            entries = [json.loads(line) for line in lines if line.startswith("{")]
            if len(entries) >= count or time.time() > deadline:
                return entries
            time.sleep(0.05)

    def stderr_lines(self):
        with self._lock:
            return list(self._stderr)

    def rss_kib(self):
        with open("/proc/%d/status" % self.process.pid) as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        return 0

    def terminate(self, timeout=20):
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=timeout)

    def kill(self):
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        for thread in self._threads:
            thread.join(timeout=5)
        self.process.stdout.close()
        self.process.stderr.close()
        # Sanitizer builds keep running after a report (TSan) or die with it (ASan, UBSan);
        # either way the test that drove the process fails with the report.
        report = self.sanitizer_report()
        if report:
            raise AssertionError("confgate reported:\n" + report)

    def sanitizer_report(self):
        lines = self.stderr_lines()
        for index, line in enumerate(lines):
            if any(marker in line for marker in SANITIZER_MARKERS):
                return "\n".join(lines[index:index + 80])
        return None


def write_confgate_config(directory, replicas, limits=None, upstream_extra="", routes=None,
                          workers=2, balancer="round_robin", server_options=None):
    """`server_options[i]` adds YAML flow entries to server i, e.g. "weight: 3"."""
    options = server_options or [""] * len(replicas)
    servers = "\n".join(
        "      - {address: %s%s}" % (replica.address, ", " + option if option else "")
        for replica, option in zip(replicas, options))
    limits_yaml = ""
    if limits:
        limits_yaml = "limits: {%s}\n" % ", ".join("%s: %s" % item for item in limits.items())
    if routes is None:
        routes = """routes:
  - match: {prefix: /v1/kv/, query: index}
    upstream: config-service
    kind: watch
    timeouts: {response: 600s}
  - match: {prefix: /}
    upstream: config-service
    kind: auto
"""
    text = """listeners:
  - address: 127.0.0.1:0
admin:
  address: 127.0.0.1:0
workers: %d
%saccess_log: {enabled: true, path: stdout}
upstreams:
  config-service:
    balancer: %s
    servers:
%s
%s
%s""" % (workers, limits_yaml, balancer, servers, upstream_extra, routes)
    path = os.path.join(directory, "confgate.yaml")
    with open(path, "w") as handle:
        handle.write(text)
    return path


class ProxyTestCase:
    """Mixin for unittest.TestCase: replicas + proxy set up per test, torn down after."""

    def start_replicas(self, count, extra_args=()):
        replicas = []
        for index in range(count):
            replica = Replica("replica-%d" % (index + 1), extra_args)
            self.addCleanup(replica.stop)
            replicas.append(replica)
        return replicas

    def start_proxy(self, replicas, **config):
        directory = tempfile.mkdtemp(prefix="confgate-test-")
        path = write_confgate_config(directory, replicas, **config)
        proxy = Proxy(path)
        self.addCleanup(proxy.kill)
        return proxy

    def start_scripted_upstream(self, *scripts, default=None):
        """A ScriptedUpstream (see there), stopped after the test."""
        upstream = ScriptedUpstream(scripts, default)
        self.addCleanup(upstream.stop)
        return upstream

    def request(self, proxy, method, path, headers=None, body=None, timeout=10):
        connection = http.client.HTTPConnection("127.0.0.1", proxy.port, timeout=timeout)
        try:
            connection.request(method, path, body=body, headers=headers or {})
            response = connection.getresponse()
            return response.status, dict(response.getheaders()), response.read()
        finally:
            connection.close()


def admin_call(proxy, method, path, body=None, headers=None, token=None):
    """One call to confgate's admin API: (status, body text); error statuses are returned, not
    raised. A POST without a body sends an empty one."""
    if body is None and method == "POST":
        body = b""
    request = urllib.request.Request("http://127.0.0.1:%d%s" % (proxy.admin_port, path),
                                     data=body, method=method, headers=headers or {})
    if token:
        request.add_header("Authorization", "Bearer " + token)
    try:
        with urllib.request.urlopen(request, timeout=5) as reply:
            return reply.status, reply.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def wait_until(predicate, timeout):
    """Polls `predicate` until it holds or `timeout` seconds pass; its last answer. For state
    another thread or process changes soon, but not at once (a test asserts on the answer)."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        if predicate():
            return True
        time.sleep(0.01)
    return predicate()


def connection_refused(port, host="127.0.0.1"):
    """True when nothing listens on host:port any more (a connect is refused)."""
    try:
        socket.create_connection((host, port), timeout=1).close()
    except OSError:
        return True
    return False


def raw_exchange(port, data, read_timeout=2.0, half_close=False):
    """Sends raw bytes and returns everything read until the peer closes or goes quiet."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(data)
        if half_close:
            sock.shutdown(socket.SHUT_WR)
        sock.settimeout(read_timeout)
        chunks = []
        try:
            while True:
                chunk = sock.recv(65536)
                if not chunk:
                    break
                chunks.append(chunk)
        except socket.timeout:
            pass
        return b"".join(chunks)


def is_closed(sock, timeout=2.0):
    """True when the peer closes `sock` within `timeout` (after any data it still sends)."""
    sock.settimeout(timeout)
    try:
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                return True
    except socket.timeout:
        return False
    except ConnectionResetError:
        return True


class ScriptedConnection:
    """One accepted upstream connection, driven by a script (a function taking this object)."""

    def __init__(self, upstream, sock, index):
        self.upstream = upstream
        self.sock = sock
        self.index = index
        self._buffer = b""
        self._closed = False

    def _fill(self, deadline):
        """Reads more bytes into the buffer; EOFError when the peer closed or reset."""
        self.sock.settimeout(max(0.01, deadline - time.time()))
        try:
            chunk = self.sock.recv(65536)
        except ConnectionResetError:
            chunk = b""
        if not chunk:
            self.upstream.note_peer_closed(self.index)
            raise EOFError
        self._buffer += chunk

    def _read_request(self, deadline):
        while b"\r\n\r\n" not in self._buffer:
            self._fill(deadline)
        head, _, rest = self._buffer.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        method, path, _ = lines[0].split(" ", 2)
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        length = int(headers.get("content-length", "0"))
        while len(rest) < length:
            self._fill(deadline)
            rest = self._buffer.partition(b"\r\n\r\n")[2]
        self._buffer = rest[length:]
        self.upstream.record(self.index, method, path)
        return method, path, headers, rest[:length]

    def read_request(self, timeout=10.0):
        """Reads one request (head + Content-Length body) and records it; None when the peer
        closed or no request arrived within `timeout`."""
        try:
            return self._read_request(time.time() + timeout)
        except (EOFError, socket.timeout):
            return None

    def wait_for_peer_close(self, timeout=10.0):
        """Waits until the proxy closes (or resets) its side; True if it did within `timeout`.
        A request that arrives meanwhile is recorded (and not answered), so a test can see
        that a connection it expected to be dropped was used again."""
        deadline = time.time() + timeout
        try:
            while time.time() < deadline and not self.upstream.stopping.is_set():
                try:
                    self._read_request(min(deadline, time.time() + 0.2))
                except socket.timeout:
                    continue
        except EOFError:
            return True
        except OSError:
            pass
        return False

    def send(self, data):
        self.sock.settimeout(10)
        self.sock.sendall(data)

    def respond_ok(self, path):
        """The correct answer: 200, keep-alive, a body that names the request's path."""
        body = ScriptedUpstream.body_for(path)
        self.send(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\nX-Upstream-Connection: %d\r\n"
                  b"\r\n%s" % (len(body), self.index, body))

    def serve(self, count=None):
        """Answers requests correctly until the peer closes (or `count` were answered)."""
        answered = 0
        while count is None or answered < count:
            request = self.read_request(timeout=60)
            if request is None:
                return False
            self.respond_ok(request[1])
            answered += 1
        return True

    def reset(self):
        """Closes with a TCP RST (SO_LINGER 0) instead of a FIN."""
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.close()

    def half_close(self):
        self.sock.shutdown(socket.SHUT_WR)

    def close(self):
        if not self._closed:
            self._closed = True
            self.sock.close()


class ScriptedUpstream:
    """A one-host upstream on 127.0.0.1 (ephemeral port) that runs a script per accepted
    connection: connection i runs scripts[i], later ones `default` (answer correctly with
    keep-alive). It counts accepted connections and records which connection carried which
    request, so a test can tell whether the proxy reused a connection or opened a new one."""

    def __init__(self, scripts=(), default=None):
        self.scripts = list(scripts)
        self.default = default or (lambda connection: connection.serve())
        self.stopping = threading.Event()
        self._lock = threading.Lock()
        self._requests = []  # (connection index, method, path)
        self._peer_closed = set()
        self._connections = []
        self._errors = []
        self.listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(64)
        self.port = self.listener.getsockname()[1]
        self.address = "127.0.0.1:%d" % self.port
        self._thread = threading.Thread(target=self._accept_loop, daemon=True)
        self._thread.start()

    @staticmethod
    def body_for(path):
        return b"answer for " + path.encode() + b"\n"

    def _accept_loop(self):
        while not self.stopping.is_set():
            try:
                sock, _ = self.listener.accept()
            except OSError:
                return
            with self._lock:
                index = len(self._connections)
                connection = ScriptedConnection(self, sock, index)
                self._connections.append(connection)
            script = self.scripts[index] if index < len(self.scripts) else self.default
            threading.Thread(target=self._run, args=(script, connection), daemon=True).start()

    def _run(self, script, connection):
        try:
            script(connection)
        except OSError as error:
            if not self.stopping.is_set():
                with self._lock:
                    self._errors.append("connection %d: %r" % (connection.index, error))
        finally:
            connection.close()

    def record(self, index, method, path):
        with self._lock:
            self._requests.append((index, method, path))

    def note_peer_closed(self, index):
        with self._lock:
            self._peer_closed.add(index)

    def accepted(self):
        """How many TCP connections were accepted so far."""
        with self._lock:
            return len(self._connections)

    def requests(self):
        """(connection index, method, path) of every request read so far, in order."""
        with self._lock:
            return list(self._requests)

    def connection_of(self, path):
        """Indices of the connections that carried a request for `path`."""
        return [index for index, _, seen in self.requests() if seen == path]

    def peer_closed(self, index):
        """True when the script saw the proxy close connection `index`."""
        with self._lock:
            return index in self._peer_closed

    def errors(self):
        with self._lock:
            return list(self._errors)

    def stop(self):
        self.stopping.set()
        try:
            self.listener.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.listener.close()
        with self._lock:
            connections = list(self._connections)
        for connection in connections:
            try:
                connection.sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        self._thread.join(timeout=5)


class ClosedPort:
    """An address where nothing listens: connects to it are refused at once. The port stays
    bound (without listen()) so no other process can take it meanwhile."""

    def __init__(self):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        self.address = "127.0.0.1:%d" % self.sock.getsockname()[1]

    def close(self):
        self.sock.close()

"""Resources under pressure: request-body back-pressure, pipelined answers a client does not
read, file-descriptor exhaustion, connection limits, a pooled connection the upstream closed as
we reused it, and allocations that fail."""

import os
import resource
import socket
import socketserver
import subprocess
import sys
import tempfile
import threading
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "support"))
from confgate_harness import (CONFGATE_BIN, SLOW, Proxy, ProxyTestCase,  # noqa: E402
                              admin_call, wait_until, write_confgate_config)


class TcpUpstream:
    """A scripted upstream: `handle(sock)` runs for every accepted connection."""

    def __init__(self, handle):
        class Handler(socketserver.BaseRequestHandler):
            def handle(self):
                handle(self.request)

        self.server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.address = "127.0.0.1:%d" % self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


CACHED_ROUTES = """routes:
  - match: {prefix: /}
    upstream: config-service
    kind: auto
    cache: {enabled: true, default_ttl: 1h}
"""


def read_head(sock):
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(4096)
        if not chunk:
            return None
        data += chunk
    return data


class ResourceTest(ProxyTestCase, unittest.TestCase):
    def upstream(self, handle):
        upstream = TcpUpstream(handle)
        self.addCleanup(upstream.stop)
        return upstream

    def test_request_body_back_pressure_bounds_memory(self):
        release = threading.Event()

        def slow_reader(sock):
            release.wait(10)  # read nothing for a while: the proxy must stop reading the client
            total = 0
            while True:
                chunk = sock.recv(1 << 20)
                if not chunk:
                    return
                total += len(chunk)

        upstream = self.upstream(slow_reader)
        proxy = self.start_proxy([upstream], limits={"max_request_body_bytes": "1GiB"})
        baseline = proxy.rss_kib()
        size = 200 * 1024 * 1024
        sent = [0]

        def upload():
            with socket.create_connection(("127.0.0.1", proxy.port), timeout=20) as sock:
                sock.sendall(b"PUT /upload HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % size)
                piece = b"u" * (1 << 20)
                try:
                    for _ in range(size // len(piece)):
                        sock.sendall(piece)
                        sent[0] += len(piece)
                except OSError:
                    pass

        uploader = threading.Thread(target=upload, daemon=True)
        uploader.start()
        time.sleep(2)
        growth = proxy.rss_kib() - baseline
        stalled_at = sent[0]
        release.set()
        self.assertLess(stalled_at, 64 * 1024 * 1024, "the client was never slowed down")
        self.assertLess(growth, 32 * 1024, "proxy RSS grew %d KiB" % growth)
        uploader.join(30)
        self.assertEqual(sent[0], size, "the upload did not resume after the upstream read")

    def test_pipelined_cache_hits_wait_for_the_client_to_read(self):
        # Answers from the cache are made at once: a client that pipelines requests for them
        # and never reads must not make confgate buffer every answer.
        replica = self.start_replicas(1)[0]
        proxy = self.start_proxy([replica], workers=1, routes=CACHED_ROUTES)
        sizes = [4096, 4097, 4098, 4099]  # each answer names its request by its length
        for size in sizes:
            for _ in range(2):
                status, headers, body = self.request(proxy, "GET", "/large?bytes=%d" % size)
                self.assertEqual((status, len(body)), (200, size))
        self.assertEqual(headers.get("Cache-Status"), "confgate; hit")
        baseline = proxy.rss_kib()
        count = 50000  # about 2 MiB of requests for about 210 MiB of answers
        order = [sizes[i % len(sizes)] for i in range(count)]
        requests = b"".join(b"GET /large?bytes=%d HTTP/1.1\r\nHost: x\r\n\r\n" % size
                            for size in order)
        sent = [0]
        sock = socket.create_connection(("127.0.0.1", proxy.port), timeout=30)
        self.addCleanup(sock.close)

        def send():
            try:
                for start in range(0, len(requests), 16384):
                    sock.sendall(requests[start:start + 16384])
                    sent[0] = start + len(requests[start:start + 16384])
            except OSError:
                pass

        sender = threading.Thread(target=send, daemon=True)
        sender.start()
        # Until the client has sent nothing more for a second (everything, or what it could).
        last, stalled_since = -1, time.time()
        deadline = time.time() + 10 * SLOW
        while time.time() < deadline and time.time() - stalled_since < 1.0:
            if sent[0] != last:
                last, stalled_since = sent[0], time.time()
            time.sleep(0.05)
        growth = proxy.rss_kib() - baseline
        # (The kernel's socket buffers may take all the requests: then confgate holds them.)
        self.assertLess(growth, 64 * 1024, "confgate RSS grew %d KiB" % growth)

        # Now the client reads: every answer comes, whole and in order.
        received = bytearray()
        answered = []
        position = 0
        while len(answered) < count:
            chunk = sock.recv(1 << 20)
            self.assertTrue(chunk, "closed after %d answers" % len(answered))
            received += chunk
            while True:
                end = received.find(b"\r\n\r\n", position)
                if end < 0:
                    break
                head = bytes(received[position:end])
                length = int(head.split(b"Content-Length: ")[1].split(b"\r\n")[0])
                if len(received) < end + 4 + length:
                    break
                self.assertTrue(head.startswith(b"HTTP/1.1 200 "), head[:40])
                answered.append(length)
                position = end + 4 + length
            del received[:position]
            position = 0
        sender.join(10)
        self.assertEqual(sent[0], len(requests))
        self.assertEqual(answered, order)
        self.assertEqual(len(received), 0, "more answers than requests")
        self.assertIsNone(proxy.process.poll())

    def test_stale_pooled_connection_is_retried_once(self):
        def one_answer_per_connection(sock):
            # Answers the first request, then closes on the second without a word, as an
            # upstream whose keep-alive timer fired just as the proxy reused the connection.
            if read_head(sock) is None:
                return
            sock.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
            read_head(sock)

        upstream = self.upstream(one_answer_per_connection)
        proxy = self.start_proxy([upstream], workers=1)
        import http.client
        connection = http.client.HTTPConnection("127.0.0.1", proxy.port, timeout=5)
        for _ in range(5):
            connection.request("GET", "/config")
            response = connection.getresponse()
            self.assertEqual((response.status, response.read()), (200, b"ok"))
        connection.close()

    def test_writes_are_not_retried_on_a_stale_connection(self):
        bodies = []

        def record(sock):
            head = read_head(sock)
            if head is None:
                return
            bodies.append(head)
            sock.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
            read_head(sock)

        upstream = self.upstream(record)
        proxy = self.start_proxy([upstream], workers=1)
        import http.client
        connection = http.client.HTTPConnection("127.0.0.1", proxy.port, timeout=5)
        connection.request("GET", "/a")
        connection.getresponse().read()
        connection.request("PUT", "/b", body=b"payload")
        self.assertEqual(connection.getresponse().status, 502)
        connection.close()
        self.assertEqual(len(bodies), 1)

    def test_idle_upstream_connection_is_closed_after_its_idle_timeout(self):
        upstream = self.start_scripted_upstream()  # every connection answers, keep-alive
        proxy = self.start_proxy([upstream], workers=1,
                                 upstream_extra="    keepalive: {idle_timeout: 300ms}\n")
        self.assertEqual(self.request(proxy, "GET", "/a")[0], 200)
        # The connection goes idle after it carried /b, so after this moment: the time from here
        # to the close is at least the idle timeout, however late this thread runs.
        sent = time.time()
        self.assertEqual(self.request(proxy, "GET", "/b")[0], 200)
        self.assertEqual(upstream.connection_of("/b"), [0], "a pooled connection was not reused")
        self.assertTrue(wait_until(lambda: upstream.peer_closed(0), 10),
                        "the idle connection was never closed")
        self.assertGreater(time.time() - sent, 0.25, "closed before its idle timeout")
        self.assertEqual(self.request(proxy, "GET", "/c")[0], 200)
        self.assertEqual(upstream.connection_of("/c"), [1])

    def test_max_connections_refuses_extra_clients(self):
        replica = self.start_replicas(1)[0]
        proxy = self.start_proxy([replica], workers=1, limits={"max_connections": 2})
        held = [socket.create_connection(("127.0.0.1", proxy.port)) for _ in range(2)]
        time.sleep(0.2)
        with socket.create_connection(("127.0.0.1", proxy.port), timeout=2) as extra:
            extra.settimeout(2)
            extra.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
            try:
                self.assertEqual(extra.recv(100), b"")
            except ConnectionResetError:
                pass
        for sock in held:
            sock.close()

        def served():
            try:
                return self.request(proxy, "GET", "/health", timeout=2)[0] == 200
            except OSError:  # refused: the proxy has not seen both closes yet
                return False

        # The worker frees the slots as it reads the two closes.
        self.assertTrue(wait_until(served, 5 * SLOW), "closed connections still count")


class DescriptorExhaustionTest(ProxyTestCase, unittest.TestCase):
    # UBSan's vptr check probes memory through a pipe(2); with no descriptor left it reports
    # every virtual call as a bad vptr, so this test only means something without sanitizers.
    @unittest.skipIf(os.environ.get("CONFGATE_SANITIZED"), "UBSan needs free descriptors")
    def test_emfile_pauses_accepting_and_recovers(self):
        replica = self.start_replicas(1)[0]
        directory = tempfile.mkdtemp(prefix="confgate-test-")
        path = write_confgate_config(directory, [replica], workers=1)

        def low_fd_limit():
            resource.setrlimit(resource.RLIMIT_NOFILE, (48, 48))

        original_popen = subprocess.Popen

        def popen_with_limit(*args, **kwargs):
            kwargs["preexec_fn"] = low_fd_limit
            return original_popen(*args, **kwargs)

        subprocess.Popen = popen_with_limit
        try:
            proxy = Proxy(path)
        finally:
            subprocess.Popen = original_popen
        self.addCleanup(proxy.kill)

        import http.client
        kept = http.client.HTTPConnection("127.0.0.1", proxy.port, timeout=5)
        kept.request("GET", "/health")
        self.assertEqual(kept.getresponse().read(), b"ok\n")  # pools an upstream connection

        flood = []
        for _ in range(80):
            flood.append(socket.create_connection(("127.0.0.1", proxy.port), timeout=2))
        self.assertTrue(wait_until(
            lambda: any("accept failed" in line for line in proxy.stderr_lines()), 5))
        # Connections it already has keep working.
        kept.request("GET", "/health")
        self.assertEqual(kept.getresponse().read(), b"ok\n")
        for sock in flood:
            sock.close()
        kept.close()
        time.sleep(0.5)
        self.assertEqual(self.request(proxy, "GET", "/health")[0], 200)
        self.assertIsNone(proxy.process.poll())


def vm_size_kib(pid):
    with open("/proc/%d/status" % pid) as status:
        for line in status:
            if line.startswith("VmSize:"):
                return int(line.split()[1])
    return 0


class AllocationFailureTest(ProxyTestCase, unittest.TestCase):
    # ASan and TSan reserve terabytes of address space: a limit on it means nothing there.
    @unittest.skipIf(os.environ.get("CONFGATE_SANITIZED"),
                     "sanitizers reserve huge address space; RLIMIT_AS cannot be tested")
    def test_failed_allocations_close_connections_not_the_process(self):
        replica = self.start_replicas(1)[0]
        proxy = self.start_proxy([replica], workers=1, limits={
            "max_request_header_bytes": "1MiB", "header_timeout": "60s"})
        self.assertEqual(self.request(proxy, "GET", "/health")[0], 200)
        # Room for 128 MiB more than confgate holds now: the heads below need more.
        limit = (vm_size_kib(proxy.process.pid) + 128 * 1024) * 1024
        resource.prlimit(proxy.process.pid, resource.RLIMIT_AS, (limit, limit))
        value = b"a" * (1024 * 1024 - 1024)
        clients = []
        self.addCleanup(lambda: [sock.close() for sock in clients])

        def flood():
            # Heads that never end, each buffered whole until its limit: confgate must keep them
            # all, and runs out of address space first.
            for _ in range(192):
                try:
                    sock = socket.create_connection(("127.0.0.1", proxy.port), timeout=5)
                    clients.append(sock)
                    sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\nX-Big: " + value)
                except OSError:
                    pass  # closed by confgate: that is the point

        flooder = threading.Thread(target=flood, daemon=True)
        flooder.start()
        flooder.join(60 * SLOW)

        def failed():
            return any("allocation failed" in line for line in proxy.stderr_lines())

        wait_until(lambda: failed() or proxy.process.poll() is not None, 10 * SLOW)
        self.assertIsNone(proxy.process.poll(), "confgate died:\n" +
                          "\n".join(proxy.stderr_lines()[-5:]))
        self.assertTrue(failed(), "no allocation failed: the limit was not reached")
        for sock in clients:
            sock.close()

        def serving():
            try:
                return self.request(proxy, "GET", "/health", timeout=2)[0] == 200
            except OSError:
                return False

        self.assertTrue(wait_until(serving, 10 * SLOW), "no request succeeds after the flood")
        self.assertEqual(admin_call(proxy, "GET", "/healthz"), (200, "ok\n"))
        status, metrics = admin_call(proxy, "GET", "/metrics")
        counted = [line for line in metrics.splitlines()
                   if line.startswith("confgate_allocation_failures_total ")]
        self.assertEqual(len(counted), 1, metrics[-300:])
        self.assertGreater(float(counted[0].split()[1]), 0)
        self.assertIsNone(proxy.process.poll())


if __name__ == "__main__":
    unittest.main()

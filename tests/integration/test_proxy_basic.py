"""The proxy's HTTP/1.1 data path against real config-service replicas."""

import os
import re
import socket
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "support"))
from confgate_harness import ProxyTestCase, raw_exchange  # noqa: E402


def replica_headers(replica, uri_prefix):
    """Headers of the last request `replica` saw whose URI starts with `uri_prefix`."""
    for entry in reversed(replica.debug_requests()):
        if entry["uri"].startswith(uri_prefix):
            return {name.lower(): value for name, value in entry["headers"]}
    return None


class RoundTripTest(ProxyTestCase, unittest.TestCase):
    def setUp(self):
        self.replicas = self.start_replicas(1)
        self.proxy = self.start_proxy(self.replicas)

    def test_put_get_head_delete(self):
        status, headers, body = self.request(self.proxy, "PUT", "/v1/kv/app/db", body=b"pg://a")
        self.assertEqual((status, body), (200, b"true"))
        status, headers, body = self.request(self.proxy, "GET", "/v1/kv/app/db")
        self.assertEqual((status, body), (200, b"pg://a"))
        index = headers["X-Config-Index"]
        self.assertEqual(headers["ETag"], '"%s"' % index)
        self.assertIn("confgate", headers["Via"])

        status, headers, body = self.request(self.proxy, "HEAD", "/v1/kv/app/db")
        self.assertEqual((status, body), (200, b""))
        # A HEAD response keeps the Content-Length the upstream gave it, and has no body.
        reply = raw_exchange(self.proxy.port, b"HEAD /large?bytes=1234 HTTP/1.1\r\nHost: x\r\n\r\n"
                             b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        self.assertIn(b"Content-Length: 1234\r\n", reply)
        self.assertTrue(reply.endswith(b"\r\n\r\nok\n"), reply)

        status, _, body = self.request(self.proxy, "GET", "/v1/kv/app/db",
                                       headers={"If-None-Match": '"%s"' % index})
        self.assertEqual((status, body), (304, b""))

        status, _, _ = self.request(self.proxy, "DELETE", "/v1/kv/app/db")
        self.assertEqual(status, 200)
        status, _, _ = self.request(self.proxy, "GET", "/v1/kv/app/db")
        self.assertEqual(status, 404)

    def test_forwarding_headers_and_hop_by_hop_removal(self):
        status, headers, _ = self.request(self.proxy, "GET", "/v1/kv/fwd", headers={
            "Connection": "X-Secret",
            "X-Secret": "do-not-forward",
            "Keep-Alive": "timeout=5",
            "TE": "trailers",
            "Upgrade": "websocket",
            "Proxy-Connection": "keep-alive",
            "X-Forwarded-For": "203.0.113.7",
        })
        self.assertEqual(status, 404)
        seen = replica_headers(self.replicas[0], "/v1/kv/fwd")
        for name in ("x-secret", "keep-alive", "te", "upgrade", "proxy-connection"):
            self.assertNotIn(name, seen)
        self.assertEqual(seen["x-forwarded-for"], "203.0.113.7, 127.0.0.1")
        self.assertEqual(seen["x-forwarded-proto"], "http")
        self.assertIn("1.1 confgate", seen["via"])
        self.assertRegex(seen["x-request-id"],
                         r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")

        self.request(self.proxy, "GET", "/v1/kv/rid", headers={"X-Request-Id": "client-id-42"})
        self.assertEqual(replica_headers(self.replicas[0], "/v1/kv/rid")["x-request-id"],
                         "client-id-42")

    def test_large_heads_are_forwarded_whole(self):
        # Heads over 2 KiB are written straight into the output buffer, smaller ones through
        # the stack: both arrive intact.
        for size in (100, 2100, 9000):
            value = "".join(chr(ord("a") + i % 26) for i in range(size))
            path = "/v1/kv/big-%d" % size
            status, _, _ = self.request(self.proxy, "GET", path, headers={"X-Big": value})
            self.assertEqual(status, 404)
            self.assertEqual(replica_headers(self.replicas[0], path)["x-big"], value)

    def test_access_log_line_per_request(self):
        self.request(self.proxy, "PUT", "/v1/kv/logged?token=secret", body=b"x")
        self.request(self.proxy, "GET", "/v1/kv/logged")
        entries = self.proxy.access_log(count=2)
        self.assertEqual(len(entries), 2)
        put, get = entries
        self.assertEqual((put["method"], put["path"], put["status"]), ("PUT", "/v1/kv/logged", 200))
        self.assertEqual((get["method"], get["status"], get["bytes"]), ("GET", 200, 1))
        self.assertEqual(get["upstream"], "config-service")
        self.assertEqual(get["host"], self.replicas[0].address)
        self.assertEqual(get["client"], "127.0.0.1")
        self.assertTrue(get["request_id"])
        self.assertGreaterEqual(get["duration_ms"], 0)
        self.assertNotIn("secret", str(put))

    def test_access_log_entries_carry_nothing_over(self):
        # One worker: the second exchange reuses the entry the first one gave back.
        proxy = self.start_proxy(self.replicas, workers=1)
        self.request(proxy, "GET", "/v1/kv/logged", headers={"X-Request-Id": "first-exchange"})
        reply = raw_exchange(proxy.port, b"GET /bad path HTTP/1.1\r\nHost: x\r\n\r\n")
        self.assertIn(b" 400 ", reply)
        entries = proxy.access_log(count=2)
        self.assertEqual(len(entries), 2)
        self.assertEqual(entries[0]["request_id"], "first-exchange")
        bad = entries[1]
        self.assertEqual(bad["status"], 400)
        self.assertEqual((bad["method"], bad["path"], bad["upstream"], bad["host"],
                          bad["request_id"]), ("", "", "", "", ""))
        self.assertEqual(bad["bytes"], len(reply.partition(b"\r\n\r\n")[2]))

    def test_chunked_request_body(self):
        chunks = b"".join(b"%x;ext=1\r\n%s\r\n" % (2000, (b"%02d" % index) * 1000)
                          for index in range(50))
        reply = raw_exchange(self.proxy.port,
                             b"POST /sink HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
                             b"Connection: close\r\n\r\n" + chunks + b"0\r\n\r\n")
        self.assertIn(b"HTTP/1.1 200 OK", reply)
        self.assertTrue(reply.endswith(b'{"bytes":100000}'), reply)

    def test_chunked_response(self):
        status, headers, body = self.request(self.proxy, "GET", "/large?bytes=300000&chunked=1")
        self.assertEqual(status, 200)
        self.assertEqual(headers.get("Transfer-Encoding"), "chunked")
        self.assertEqual(len(body), 300000)
        self.assertEqual(body[:26], b"abcdefghijklmnopqrstuvwxyz")
        self.assertEqual(body[260000:260003], bytes([97 + 260000 % 26, 97 + 260001 % 26,
                                                     97 + 260002 % 26]))

    def test_pipelined_requests_answered_in_order(self):
        for key in ("a", "b", "c"):
            self.request(self.proxy, "PUT", "/v1/kv/pipe-" + key, body=("value-" + key).encode())
        pipeline = b"".join(
            b"GET /v1/kv/pipe-%s HTTP/1.1\r\nHost: x\r\n\r\n" % key for key in (b"a", b"b", b"c"))
        reply = raw_exchange(self.proxy.port, pipeline + b"GET /health HTTP/1.1\r\nHost: x\r\n"
                             b"Connection: close\r\n\r\n")
        self.assertEqual(reply.count(b"HTTP/1.1 200 OK"), 4)
        positions = [reply.index(b"value-" + key) for key in (b"a", b"b", b"c")]
        self.assertEqual(positions, sorted(positions))
        self.assertTrue(reply.endswith(b"ok\n"))

    def test_expect_100_continue(self):
        with socket.create_connection(("127.0.0.1", self.proxy.port), timeout=5) as sock:
            sock.sendall(b"PUT /v1/kv/expect HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n"
                         b"Expect: 100-continue\r\n\r\n")
            interim = sock.recv(4096)
            self.assertTrue(interim.startswith(b"HTTP/1.1 100 Continue\r\n\r\n"), interim)
            sock.sendall(b"hello")
            final = b""
            while b"true" not in final:
                chunk = sock.recv(4096)
                if not chunk:
                    break
                final += chunk
            self.assertIn(b"HTTP/1.1 200 OK", final)
        seen = replica_headers(self.replicas[0], "/v1/kv/expect")
        self.assertNotIn("expect", seen)
        self.assertEqual(self.request(self.proxy, "GET", "/v1/kv/expect")[2], b"hello")

    def test_http10_client(self):
        reply = raw_exchange(self.proxy.port, b"GET /large?bytes=1000&chunked=1 HTTP/1.0\r\n\r\n")
        head, _, body = reply.partition(b"\r\n\r\n")
        self.assertIn(b"200 OK", head)
        self.assertNotIn(b"chunked", head.lower())
        self.assertEqual(len(body), 1000)


class BalancingAndPoolingTest(ProxyTestCase, unittest.TestCase):
    def test_round_robin_spreads_requests(self):
        replicas = self.start_replicas(3)
        proxy = self.start_proxy(replicas, workers=1)
        seen = [self.request(proxy, "GET", "/health")[1]["X-Replica-Id"] for _ in range(30)]
        self.assertEqual({replica: seen.count(replica) for replica in set(seen)},
                         {"replica-1": 10, "replica-2": 10, "replica-3": 10})

    def test_keep_alive_reuse_on_both_sides(self):
        replicas = self.start_replicas(2)
        proxy = self.start_proxy(replicas, workers=2)
        import http.client
        connection = http.client.HTTPConnection("127.0.0.1", proxy.port, timeout=5)
        for _ in range(50):
            connection.request("GET", "/health")
            response = connection.getresponse()
            self.assertEqual(response.read(), b"ok\n")
        connection.close()
        accepted = sum(replica.stats()["connections_accepted"] for replica in replicas)
        # One client connection lives on one worker; it keeps one connection per replica.
        self.assertLessEqual(accepted, 2 + 2)  # + each replica's own /stats call
        entries = proxy.access_log(count=50)
        self.assertEqual(len(entries), 50)


class StreamingTest(ProxyTestCase, unittest.TestCase):
    def test_large_response_streams_with_bounded_memory(self):
        replicas = self.start_replicas(1)
        proxy = self.start_proxy(replicas)
        size = 1 << 30  # 1 GiB
        self.request(proxy, "GET", "/health")  # warm up both workers' first allocations
        baseline_rss = proxy.rss_kib()
        peak_rss = [0]
        done = threading.Event()

        def sample():
            while not done.is_set():
                peak_rss[0] = max(peak_rss[0], proxy.rss_kib())
                time.sleep(0.05)

        sampler = threading.Thread(target=sample)
        sampler.start()
        try:
            with socket.create_connection(("127.0.0.1", proxy.port), timeout=30) as sock:
                sock.sendall(b"GET /large?bytes=%d HTTP/1.1\r\nHost: x\r\n\r\n" % size)
                received = b""
                while b"\r\n\r\n" not in received:
                    received += sock.recv(65536)
                head, _, body = received.partition(b"\r\n\r\n")
                self.assertIn(b"Content-Length: %d" % size, head)
                total = len(body)
                while total < size:
                    chunk = sock.recv(1 << 20)
                    self.assertTrue(chunk, "connection closed after %d bytes" % total)
                    total += len(chunk)
                self.assertEqual(total, size)
        finally:
            done.set()
            sampler.join()
        growth = peak_rss[0] - baseline_rss
        self.assertLess(growth, 48 * 1024, "RSS grew by %d KiB while streaming 1 GiB" % growth)

    def test_slow_reader_stalls_only_itself(self):
        replicas = self.start_replicas(1)
        proxy = self.start_proxy(replicas, workers=1)
        with socket.create_connection(("127.0.0.1", proxy.port), timeout=5) as slow:
            slow.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            slow.sendall(b"GET /large?bytes=100000000 HTTP/1.1\r\nHost: x\r\n\r\n")
            time.sleep(0.3)
            started = time.time()
            for _ in range(20):
                self.assertEqual(self.request(proxy, "GET", "/health")[0], 200)
            self.assertLess(time.time() - started, 5)


class WatchAndErrorsTest(ProxyTestCase, unittest.TestCase):
    def test_watch_parks_until_the_key_changes(self):
        replicas = self.start_replicas(1)
        proxy = self.start_proxy(replicas)
        self.request(proxy, "PUT", "/v1/kv/feature", body=b"v1")
        index = self.request(proxy, "GET", "/v1/kv/feature")[1]["X-Config-Index"]
        result = {}

        def watch():
            result["reply"] = self.request(proxy, "GET", "/v1/kv/feature?index=%s&wait=5s" % index)

        watcher = threading.Thread(target=watch)
        started = time.time()
        watcher.start()
        time.sleep(0.5)
        self.assertTrue(watcher.is_alive(), "the watch returned before the key changed")
        self.request(proxy, "PUT", "/v1/kv/feature", body=b"v2")
        watcher.join(5)
        self.assertEqual(result["reply"][0], 200)
        self.assertEqual(result["reply"][2], b"v2")
        self.assertLess(time.time() - started, 4)

    def test_502_when_every_replica_is_down(self):
        replicas = self.start_replicas(2)
        proxy = self.start_proxy(replicas)
        for replica in replicas:
            replica.stop()
        status, headers, body = self.request(proxy, "GET", "/v1/kv/x")
        self.assertEqual(status, 502)
        self.assertEqual(headers["Cache-Control"], "no-store")
        self.assertIn(b"connect", body)

    def test_504_when_the_replica_hangs(self):
        replicas = self.start_replicas(1)
        proxy = self.start_proxy(replicas, upstream_extra="    timeouts: {connect: 1s, response: 500ms}")
        replicas[0].fault("hang")
        started = time.time()
        status, headers, _ = self.request(proxy, "GET", "/v1/kv/x")
        self.assertEqual(status, 504)
        self.assertEqual(headers["Cache-Control"], "no-store")
        self.assertLess(time.time() - started, 3)

    def test_404_without_a_route(self):
        replicas = self.start_replicas(1)
        proxy = self.start_proxy(replicas, routes="""routes:
  - match: {prefix: /v1/}
    upstream: config-service
""")
        status, headers, _ = self.request(proxy, "GET", "/other")
        self.assertEqual(status, 404)
        self.assertEqual(headers["Cache-Control"], "no-store")
        self.assertEqual(self.request(proxy, "GET", "/v1/kv/none")[0], 404)
        self.assertEqual(replicas[0].stats()["requests"], 1)

    def test_upstream_500_passes_through(self):
        replicas = self.start_replicas(1)
        proxy = self.start_proxy(replicas)
        replicas[0].fault("error")
        self.assertEqual(self.request(proxy, "GET", "/v1/kv/x")[0], 500)
        replicas[0].fault("none")
        self.assertEqual(self.request(proxy, "GET", "/health")[0], 200)


if __name__ == "__main__":
    unittest.main()

"""What the cache may keep and must forget (issue 18): a body whose end is not known is never
kept as a good copy, and a write through confgate removes the copies of what it changed, so
neither stale-if-error nor read-only mode can serve them later."""

import json
import os
import sys
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "support"))
from confgate_harness import ProxyTestCase  # noqa: E402

CHECKS = """    health_check: {type: http, path: /health, interval: 100ms, timeout: 200ms,
                   healthy_threshold: 1, unhealthy_threshold: 1}
"""
NO_RETRIES = "    retries: {attempts: 0}\n"

ROUTES = """routes:
  - match: {prefix: /}
    upstream: config-service
    kind: auto
    cache: {enabled: true, default_ttl: 0s, max_stale: 1h}
"""


def cutting_replica(connection):
    """Answers every request; /cut/close with a close-delimited body it breaks off by dying,
    /cut/length with a body shorter than its Content-Length; the rest correctly."""
    while True:
        request = connection.read_request(timeout=60)
        if request is None:
            return
        path = request[1]
        if path == "/cut/close":
            # No Content-Length, not chunked: the body runs until the close, which comes in
            # the middle of a JSON document.
            connection.send(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\r\n"
                            b'{"db": {"host": "db.internal", "pa')
            connection.close()
            return
        if path == "/cut/length":
            connection.send(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n"
                            b'{"db": {"host": "db.internal", "pa')
            connection.close()
            return
        connection.respond_ok(path)


class TruncatedBodyTest(ProxyTestCase, unittest.TestCase):
    def start(self, extra):
        upstream = self.start_scripted_upstream(default=cutting_replica)
        proxy = self.start_proxy([upstream], workers=2, routes=ROUTES,
                                 upstream_extra=NO_RETRIES + extra)
        return upstream, proxy

    def read_cut_bodies(self, proxy):
        # The close-delimited body reaches the client as the upstream sent it (the client
        # could not tell either way); the short one is cut off.
        status, _, body = self.request(proxy, "GET", "/cut/close")
        self.assertEqual(status, 200)
        self.assertTrue(body.endswith(b'"pa'))
        with self.assertRaises(Exception):
            self.request(proxy, "GET", "/cut/length")
        # A complete answer, as the control: it is kept and served later.
        status, _, body = self.request(proxy, "GET", "/good")
        self.assertEqual((status, body), (200, b"answer for /good\n"))

    def test_stale_if_error_never_serves_a_body_whose_end_was_a_bare_close(self):
        upstream, proxy = self.start("")
        self.read_cut_bodies(proxy)
        upstream.stop()
        status, headers, body = self.request(proxy, "GET", "/good")
        self.assertEqual((status, body), (200, b"answer for /good\n"))
        self.assertEqual(headers["Cache-Status"], "confgate; hit; fwd=stale")
        for path in ("/cut/close", "/cut/length"):
            status, headers, body = self.request(proxy, "GET", path)
            self.assertNotIn(b"db.internal", body, path)
            self.assertEqual(status, 502, path)
            self.assertNotIn("Cache-Status", headers)

    def test_read_only_mode_never_serves_a_body_whose_end_was_a_bare_close(self):
        upstream, proxy = self.start(CHECKS)
        self.read_cut_bodies(proxy)
        upstream.stop()
        deadline = time.time() + 10
        while not any('"to":"read_only"' in line for line in proxy.stderr_lines()):
            self.assertLess(time.time(), deadline, "never went read-only")
            time.sleep(0.02)
        status, headers, _ = self.request(proxy, "GET", "/good")
        self.assertEqual((status, headers["X-Confgate-Mode"]), (200, "read-only"))
        for path in ("/cut/close", "/cut/length"):
            status, headers, body = self.request(proxy, "GET", path)
            self.assertEqual(status, 503, path)
            self.assertEqual(json.loads(body)["error"], "no_cached_copy")


class WriteInvalidationTest(ProxyTestCase, unittest.TestCase):
    def wait_read_only(self, proxy):
        deadline = time.time() + 10
        while not any('"to":"read_only"' in line for line in proxy.stderr_lines()):
            self.assertLess(time.time(), deadline, "never went read-only")
            time.sleep(0.02)

    def test_read_only_mode_never_serves_a_value_older_than_a_write_it_carried(self):
        replicas = self.start_replicas(2)
        proxy = self.start_proxy(replicas, routes=ROUTES, upstream_extra=CHECKS, workers=2)
        for replica in replicas:
            replica.put("app/db", "old")
            replica.put("app/other", "other")
        for path in ("/v1/kv/app/db", "/v1/kv/app/db?pretty", "/v1/kv/app/other"):
            # Several connections: the copies are made (and later looked up) by both workers.
            for _ in range(4):
                status, _, body = self.request(proxy, "GET", path)
                self.assertEqual(status, 200)
        # The write goes through confgate (to one replica; the test then stops both).
        status, _, _ = self.request(proxy, "PUT", "/v1/kv/app/db", body=b"new")
        self.assertEqual(status, 200)
        for replica in replicas:
            replica.stop()
        self.wait_read_only(proxy)
        for path in ("/v1/kv/app/db", "/v1/kv/app/db?pretty"):
            for _ in range(4):
                status, headers, body = self.request(proxy, "GET", path)
                self.assertNotEqual(body, b"old", path)
                self.assertEqual(status, 503, path)
                self.assertEqual(json.loads(body)["error"], "no_cached_copy")
        # What the write did not touch is still served.
        status, headers, body = self.request(proxy, "GET", "/v1/kv/app/other")
        self.assertEqual((status, body), (200, b"other"))
        self.assertEqual(headers["X-Confgate-Mode"], "read-only")

    def test_stale_if_error_never_serves_a_value_older_than_a_write_it_carried(self):
        replicas = self.start_replicas(1)
        proxy = self.start_proxy(replicas, routes=ROUTES, upstream_extra=NO_RETRIES)
        replicas[0].put("app/db", "old")
        self.assertEqual(self.request(proxy, "GET", "/v1/kv/app/db")[2], b"old")
        # A failed write changes nothing: the copy stays.
        replicas[0].fault("error")
        self.assertGreaterEqual(self.request(proxy, "PUT", "/v1/kv/app/db", body=b"x")[0], 500)
        status, headers, body = self.request(proxy, "GET", "/v1/kv/app/db")
        self.assertEqual((status, body), (200, b"old"))
        self.assertEqual(headers["Cache-Status"], "confgate; hit; fwd=stale")
        replicas[0].fault("none")
        self.assertEqual(self.request(proxy, "DELETE", "/v1/kv/app/db")[0], 200)
        replicas[0].fault("error")
        status, _, body = self.request(proxy, "GET", "/v1/kv/app/db")
        self.assertNotEqual(body, b"old")
        self.assertGreaterEqual(status, 500)


if __name__ == "__main__":
    unittest.main()

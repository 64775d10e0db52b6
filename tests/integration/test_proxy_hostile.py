"""Hostile and broken input: every smuggling vector gets 400 and a close, limits give the right
4xx, broken upstreams give 502, and the proxy keeps serving afterwards."""

import os
import socket
import sys
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "support"))
from confgate_harness import ProxyTestCase, is_closed, raw_exchange  # noqa: E402

SMUGGLING_ATTEMPTS = {
    "cl_and_te": b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n"
                 b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n",
    "conflicting_cl": b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nContent-Length: 40\r\n"
                      b"\r\nabcGET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n",
    "cl_list": b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 3, 40\r\n\r\nabc",
    "cl_sign": b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: +3\r\n\r\nabc",
    "te_gzip_chunked": b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n"
                       b"0\r\n\r\n",
    "te_xchunked": b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: xchunked\r\n\r\n0\r\n\r\n",
    "te_twice": b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
                b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    "te_space_before_colon": b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding : chunked\r\n\r\n"
                             b"0\r\n\r\n",
    "bad_chunk_size": b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                      b"zz\r\nhello\r\n0\r\n\r\n",
    "bad_chunk_extension": b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                           b"5;\x01\r\nhello\r\n0\r\n\r\n",
    "bare_lf": b"GET /health HTTP/1.1\nHost: x\n\n",
    "bare_cr": b"GET /health HTTP/1.1\rHost: x\r\n\r\n",
    "nul_in_value": b"GET /health HTTP/1.1\r\nHost: x\r\nX-A: a\x00b\r\n\r\n",
    "space_before_colon": b"GET /health HTTP/1.1\r\nHost: x\r\nX-A : b\r\n\r\n",
    "obs_fold": b"GET /health HTTP/1.1\r\nHost: x\r\nX-A: a\r\n  folded\r\n\r\n",
    "absolute_form_mismatch": b"GET http://evil.example/health HTTP/1.1\r\nHost: x\r\n\r\n",
    "http09": b"GET /health\r\n\r\n",
    "http2_version": b"GET /health HTTP/2.0\r\nHost: x\r\n\r\n",
    "missing_host": b"GET /health HTTP/1.1\r\n\r\n",
    "two_hosts": b"GET /health HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
    "connect": b"CONNECT evil.example:443 HTTP/1.1\r\nHost: evil.example:443\r\n\r\n",
    "http10_te": b"POST /echo HTTP/1.0\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                 b"0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n",
    "target_tab": b"GET /health\tx HTTP/1.1\r\nHost: x\r\n\r\n",
    "target_form_feed": b"GET /health\x0cx HTTP/1.1\r\nHost: x\r\n\r\n",
    "target_fragment": b"GET /v1/kv/app/..#x HTTP/1.1\r\nHost: x\r\n\r\n",
    "target_encoded_fragment": b"GET /v1/kv/%2e%2e#x HTTP/1.1\r\nHost: x\r\n\r\n",
}

# Trailer sections that would end the message somewhere else for a lenient parser: the bytes
# after them must never reach the replica as a request of their own. (The request's head and
# body are streamed before its trailers arrive, so only the smuggled request is checked.)
TRAILER_ATTEMPTS = {
    "obs_fold": b"X-T: a\r\n b\r\n\r\n",
    "leading_space": b" X-T: a\r\n\r\n",
    "bare_lf": b"X-T: a\n\r\n",
    "bare_lf_end": b"X-T: a\r\n\n",
    "nul": b"X-T: a\x00b\r\n\r\n",
    "no_colon": b"GET /smuggled HTTP/1.1\r\n\r\n",
}


class HostileRequestTest(ProxyTestCase, unittest.TestCase):
    def setUp(self):
        self.replicas = self.start_replicas(1)
        self.proxy = self.start_proxy(self.replicas, limits={
            "max_request_header_bytes": "4KiB", "max_request_body_bytes": "1KiB",
            "header_timeout": "500ms", "idle_timeout": "1s"})

    def assert_still_serving(self):
        status, _, body = self.request(self.proxy, "GET", "/health")
        self.assertEqual((status, body), (200, b"ok\n"))

    def assert_rejected(self, data, status):
        with socket.create_connection(("127.0.0.1", self.proxy.port), timeout=5) as sock:
            sock.sendall(data)
            sock.settimeout(3)
            reply = b""
            try:
                while True:
                    chunk = sock.recv(65536)
                    if not chunk:
                        break
                    reply += chunk
            except socket.timeout:
                self.fail("connection left open after %r" % reply[:80])
            except ConnectionResetError:
                pass
        self.assertTrue(reply.startswith(b"HTTP/1.1 %d " % status), reply[:200])
        self.assertIn(b"Connection: close\r\n", reply)
        self.assertEqual(reply.count(b"HTTP/1.1 "), 1, reply)

    def test_smuggling_attempts_are_rejected(self):
        for name, data in SMUGGLING_ATTEMPTS.items():
            with self.subTest(name):
                self.assert_rejected(data, 400)
                self.assert_still_serving()
        uris = [entry["uri"] for entry in self.replicas[0].debug_requests()]
        self.assertNotIn("/smuggled", uris)
        self.assertNotIn("/echo", uris)

    def test_hostile_trailers_are_rejected(self):
        for name, trailer in TRAILER_ATTEMPTS.items():
            with self.subTest(name):
                self.assert_rejected(b"POST /trailer HTTP/1.1\r\nHost: x\r\n"
                                     b"Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n" +
                                     trailer + b"GET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n", 400)
                self.assert_still_serving()
        uris = [entry["uri"] for entry in self.replicas[0].debug_requests()]
        self.assertNotIn("/smuggled", uris)

    def test_trailer_flood_gets_431(self):
        # Trailers count against max_request_header_bytes (4 KiB here) like a head.
        flood = b"".join(b"X-T%d: %s\r\n" % (i, b"a" * 60) for i in range(200))
        self.assert_rejected(b"POST /v1/kv/flood HTTP/1.1\r\nHost: x\r\n"
                             b"Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n" +
                             flood + b"\r\n", 431)
        self.assert_still_serving()

    def test_valid_trailers_and_chunk_extensions_are_accepted(self):
        reply = raw_exchange(self.proxy.port,
                             b"PUT /v1/kv/ext HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
                             b"\r\n5;a=b;c=d\r\nhello\r\n0;e=f\r\nX-Checksum: 1\r\n\r\n"
                             b"GET /v1/kv/ext HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        self.assertEqual(reply.count(b"HTTP/1.1 200 OK"), 2, reply)
        self.assertTrue(reply.endswith(b"hello"), reply)

    def test_absolute_form_matching_host_is_accepted(self):
        reply = raw_exchange(self.proxy.port, b"GET http://x/health HTTP/1.1\r\nHost: x\r\n"
                             b"Connection: close\r\n\r\n")
        self.assertTrue(reply.startswith(b"HTTP/1.1 200 OK"), reply)
        self.assertEqual(self.replicas[0].debug_requests()[-1]["uri"], "/health")

    def test_oversize_head_gets_431(self):
        self.assert_rejected(b"GET /health HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 5000 +
                             b"\r\n\r\n", 431)
        self.assert_still_serving()

    def test_long_uri_gets_414(self):
        self.assert_rejected(b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\nHost: x\r\n\r\n", 414)

    def test_oversize_body_gets_413(self):
        self.assert_rejected(b"PUT /v1/kv/big HTTP/1.1\r\nHost: x\r\nContent-Length: 2000\r\n\r\n" +
                             b"a" * 2000, 413)
        chunked = b"a" * 600
        self.assert_rejected(b"PUT /v1/kv/big HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
                             b"\r\n258\r\n" + chunked + b"\r\n258\r\n" + chunked + b"\r\n0\r\n\r\n",
                             413)
        self.assertEqual(self.request(self.proxy, "GET", "/v1/kv/big")[0], 404)

    def test_slowloris_is_cut_off_with_408(self):
        started = time.time()
        self.assert_rejected(b"GET /health HTTP/1.1\r\nHost: x\r\nX-Slow: ", 408)
        self.assertLess(time.time() - started, 2.5)
        self.assert_still_serving()

    def test_silent_connection_is_closed_after_header_timeout(self):
        with socket.create_connection(("127.0.0.1", self.proxy.port), timeout=5) as sock:
            self.assertTrue(is_closed(sock, timeout=2.5))

    def test_idle_keep_alive_connection_is_closed(self):
        with socket.create_connection(("127.0.0.1", self.proxy.port), timeout=5) as sock:
            # The connection goes idle after the answer, so after this moment: the time from
            # here to the close is at least idle_timeout (1 s), however late this thread runs.
            sent = time.time()
            sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
            reply = b""
            while not reply.endswith(b"ok\n"):
                chunk = sock.recv(65536)
                self.assertTrue(chunk, "closed before the answer: %r" % reply)
                reply += chunk
            self.assertTrue(is_closed(sock, timeout=3))
            # Later than header_timeout (500 ms): the idle timeout closed it.
            self.assertGreater(time.time() - sent, 0.9)


class BrokenUpstreamTest(ProxyTestCase, unittest.TestCase):
    def start_scripted(self, reply, close=True):
        """Every connection answers its first request with `reply`, then closes (at once, or
        after 2 s with `close=False`)."""
        def script(connection):
            if connection.read_request() is not None:
                connection.send(reply)
                if not close:
                    connection.wait_for_peer_close(timeout=2)
        return self.start_scripted_upstream(default=script)

    def test_malformed_responses_get_502(self):
        replies = {
            "garbage": b"NOT HTTP AT ALL\r\n\r\n",
            "cl_and_te": b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n"
                         b"\r\n0\r\n\r\n",
            "bare_lf": b"HTTP/1.1 200 OK\nContent-Length: 2\n\nok",
            "bad_header": b"HTTP/1.1 200 OK\r\nX-A : b\r\nContent-Length: 2\r\n\r\nok",
            "upgrade": b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n",
            "status_20": b"HTTP/1.1 20 OK\r\nContent-Length: 2\r\n\r\nok",
            "status_99": b"HTTP/1.1 99 OK\r\nContent-Length: 2\r\n\r\nok",
            "status_600": b"HTTP/1.1 600 OK\r\nContent-Length: 2\r\n\r\nok",
            "status_999": b"HTTP/1.1 999 OK\r\nContent-Length: 2\r\n\r\nok",
            "http10_te": b"HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n",
        }
        for name, reply in replies.items():
            with self.subTest(name):
                upstream = self.start_scripted(reply)
                proxy = self.start_proxy([upstream])
                status, headers, _ = self.request(proxy, "GET", "/x")
                self.assertEqual(status, 502)
                self.assertEqual(headers["Cache-Control"], "no-store")

    def test_hostile_upstream_trailers_never_make_a_complete_answer(self):
        # The head and body are streamed before the trailers come: the client sees the answer
        # cut off (or none), never one that looks complete.
        for trailer in (b"X-T: a\r\n b\r\n\r\n", b"X-T: a\n\r\n",
                        b"X-T: " + b"a" * 70000 + b"\r\n\r\n"):
            with self.subTest(trailer[:12]):
                upstream = self.start_scripted(
                    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n" +
                    trailer)
                proxy = self.start_proxy([upstream])
                reply = raw_exchange(proxy.port, b"GET /x HTTP/1.1\r\nHost: x\r\n\r\n",
                                     read_timeout=3)
                self.assertFalse(reply.endswith(b"0\r\n\r\n"), reply)
                self.assertNotIn(b"X-T", reply)

    def test_interim_response_with_a_body_is_one_502_not_two_answers(self):
        upstream = self.start_scripted(
            b"HTTP/1.1 100 Continue\r\nContent-Length: 8\r\n\r\ninjected"
            b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nreal", close=False)
        proxy = self.start_proxy([upstream])
        with socket.create_connection(("127.0.0.1", proxy.port), timeout=5) as sock:
            sock.sendall(b"GET /a HTTP/1.1\r\nHost: x\r\n\r\n")
            # Everything the client gets within 2 s: one answer, never a second one after it.
            reply = b""
            deadline = time.time() + 2
            while time.time() < deadline:
                sock.settimeout(max(0.05, deadline - time.time()))
                try:
                    chunk = sock.recv(65536)
                except (socket.timeout, ConnectionResetError):
                    break
                if not chunk:
                    break
                reply += chunk
        self.assertTrue(reply.startswith(b"HTTP/1.1 502 "), reply)
        self.assertEqual(reply.count(b"HTTP/1.1 "), 1, reply)
        self.assertNotIn(b"injected", reply)
        self.assertNotIn(b"real", reply.partition(b"\r\n\r\n")[2])

    def test_connection_cannot_strip_host_and_http10_gets_one(self):
        seen = []

        def script(connection):
            while True:
                request = connection.read_request(timeout=5)
                if request is None:
                    return
                seen.append(request)
                connection.respond_ok(request[1])
        upstream = self.start_scripted_upstream(default=script)
        proxy = self.start_proxy([upstream])
        raw_exchange(proxy.port, b"GET /a HTTP/1.1\r\nHost: cfg.example\r\n"
                     b"Connection: Host, close\r\n\r\n")
        raw_exchange(proxy.port, b"GET /b HTTP/1.0\r\n\r\n")
        self.assertEqual(len(seen), 2, seen)
        self.assertEqual(seen[0][2].get("host"), "cfg.example")
        self.assertEqual(seen[1][2].get("host"), "127.0.0.1:%d" % proxy.port)

    def test_truncated_response_is_cut_not_hung(self):
        upstream = self.start_scripted(
            b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n" + b"x" * 10)
        proxy = self.start_proxy([upstream])
        started = time.time()
        reply = raw_exchange(proxy.port, b"GET /x HTTP/1.1\r\nHost: x\r\n\r\n", read_timeout=5)
        self.assertLess(time.time() - started, 4, "the client was left hanging")
        self.assertIn(b"Content-Length: 1000", reply)
        self.assertLess(len(reply.partition(b"\r\n\r\n")[2]), 1000)

    def test_response_longer_than_content_length_is_not_reused(self):
        upstream = self.start_scripted(
            b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokHTTP/1.1 200 OK\r\n"
            b"Content-Length: 8\r\n\r\ninjected", close=False)
        proxy = self.start_proxy([upstream], workers=1)
        first = self.request(proxy, "GET", "/a")
        self.assertEqual((first[0], first[2]), (200, b"ok"))
        second = self.request(proxy, "GET", "/b")
        self.assertEqual((second[0], second[2]), (200, b"ok"))

    def test_close_delimited_response_is_rechunked(self):
        upstream = self.start_scripted(b"HTTP/1.1 200 OK\r\n\r\nuntil-close body")
        proxy = self.start_proxy([upstream])
        status, headers, body = self.request(proxy, "GET", "/x")
        self.assertEqual((status, body), (200, b"until-close body"))
        self.assertEqual(headers["Transfer-Encoding"], "chunked")


if __name__ == "__main__":
    unittest.main()

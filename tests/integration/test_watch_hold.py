"""Watches that last as long as the client wants (issue 18 item 3): a watch route's max_hold
replaces the old cut at 5 min + 5 s; when confgate ends a watch (max_hold, drain) it ends it
cleanly: a started chunked stream gets its last chunk, a long poll not yet answered a JSON 503
with Retry-After. Raw sockets on the client side, a scripted upstream on the other."""

import json
import os
import socket
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "support"))
from confgate_harness import SLOW, ProxyTestCase  # noqa: E402


def watch_routes(watch_yaml, response="15s"):
    return """routes:
  - match: {prefix: /v3/watch}
    upstream: config-service
    kind: watch
    timeouts: {response: %s}
%s  - match: {prefix: /}
    upstream: config-service
    kind: auto
""" % (response, ("    watch: %s\n" % watch_yaml) if watch_yaml else "")


def endless_stream(interval):
    """An upstream that answers with a chunked stream and sends one event every `interval`
    seconds until the proxy closes the connection."""
    def script(connection):
        if connection.read_request() is None:
            return
        connection.send(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n"
                        b"Content-Type: application/json\r\n\r\n")
        number = 0
        while not connection.upstream.stopping.is_set():
            event = b'{"event":%d}\n' % number
            number += 1
            try:
                connection.send(b"%x\r\n%s\r\n" % (len(event), event))
            except OSError:
                return
            time.sleep(interval)
    return script


def never_answers(connection):
    connection.read_request()
    connection.wait_for_peer_close(timeout=30)


class RawStream:
    """A raw client: sends one request, then parses the chunked response as it arrives."""

    def __init__(self, port, path):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.sock.sendall(b"GET %s HTTP/1.1\r\nHost: confgate\r\n\r\n" % path.encode())
        self.buffer = b""
        self.head = None
        self.events = []
        self.ended = False  # the terminating chunk arrived
        self.closed = False

    def pump(self, seconds):
        """Reads for `seconds` (or until the end or a close); parses what came."""
        deadline = time.time() + seconds
        while time.time() < deadline and not self.ended and not self.closed:
            self.sock.settimeout(max(0.01, deadline - time.time()))
            try:
                data = self.sock.recv(65536)
            except socket.timeout:
                break
            except ConnectionResetError:
                data = b""
            if not data:
                self.closed = True
            self.buffer += data
            self.parse()

    def parse(self):
        if self.head is None:
            if b"\r\n\r\n" not in self.buffer:
                return
            self.head, _, self.buffer = self.buffer.partition(b"\r\n\r\n")
        while b"\r\n" in self.buffer:
            size_line, _, rest = self.buffer.partition(b"\r\n")
            size = int(size_line, 16)
            if len(rest) < size + 2:
                return
            if rest[size:size + 2] != b"\r\n":
                raise AssertionError("malformed chunk: %r" % self.buffer[:80])
            if size == 0:
                self.ended = True
                self.buffer = rest[2:]
                return
            self.events.append(rest[:size])
            self.buffer = rest[size + 2:]

    def close(self):
        self.sock.close()


class WatchHoldTest(ProxyTestCase, unittest.TestCase):
    def stream(self, proxy, path="/v3/watch"):
        stream = RawStream(proxy.port, path)
        self.addCleanup(stream.close)
        return stream

    def test_max_hold_ends_a_chunked_stream_with_its_last_chunk(self):
        upstream = self.start_scripted_upstream(default=endless_stream(0.2))
        proxy = self.start_proxy([upstream], workers=1, routes=watch_routes("{max_hold: 2s}"))
        started = time.time()
        stream = self.stream(proxy)
        stream.pump(6 * SLOW)
        held = time.time() - started
        self.assertTrue(stream.head.startswith(b"HTTP/1.1 200"), stream.head)
        self.assertTrue(stream.ended, "no terminating chunk: %r" % stream.buffer[-80:])
        self.assertFalse(stream.closed)
        self.assertGreaterEqual(held, 1.9)
        self.assertLess(held, 3.5 * SLOW)
        self.assertGreater(len(stream.events), 5)
        for event in stream.events:
            json.loads(event)  # every event whole
        print("\n[watch] max_hold 2s: stream ended cleanly after %.2f s, %d events"
              % (held, len(stream.events)))

    def test_without_max_hold_a_stream_outlives_the_response_timeout(self):
        # Events 1.5 s apart, the response timeout 1 s: before max_hold the stream was cut
        # (silence over the timeout, mid-body); now only the client ends it.
        upstream = self.start_scripted_upstream(default=endless_stream(1.5))
        proxy = self.start_proxy([upstream], workers=1,
                                 routes=watch_routes("{protocol: none, max_hold: 0s}", "1s"))
        stream = self.stream(proxy)
        stream.pump(5.0)
        self.assertFalse(stream.closed, "stream cut: %r" % stream.buffer[-80:])
        self.assertFalse(stream.ended)
        self.assertGreaterEqual(len(stream.events), 3)
        print("\n[watch] unlimited stream held 5.0 s (response timeout 1 s), %d events"
              % len(stream.events))

    def test_max_hold_ends_an_unanswered_long_poll_with_the_json_503(self):
        upstream = self.start_scripted_upstream(default=never_answers)
        proxy = self.start_proxy([upstream], workers=1, routes=watch_routes("{max_hold: 1s}"))
        started = time.time()
        status, headers, body = self.request(proxy, "GET", "/v3/watch?wait=30s")
        self.assertLess(time.time() - started, 3.0 * SLOW)
        self.assertEqual(status, 503)
        self.assertEqual(headers["Retry-After"], "1")
        self.assertEqual(headers["Content-Type"], "application/json")
        answer = json.loads(body)
        self.assertEqual(answer["error"], "watch_ended")
        self.assertEqual(answer["upstream"], "config-service")
        self.assertIn("max_hold", answer["message"])

    def test_drain_ends_watches_cleanly_at_once(self):
        streaming = self.start_scripted_upstream(default=endless_stream(0.2))
        proxy = self.start_proxy([streaming], workers=1, routes=watch_routes(""))
        stream = self.stream(proxy)
        stream.pump(0.5)
        self.assertGreater(len(stream.events), 0)
        started = time.time()
        terminated = threading.Thread(target=proxy.terminate)
        terminated.start()
        stream.pump(5.0)
        terminated.join()
        self.assertTrue(stream.ended, "no terminating chunk: %r" % stream.buffer[-80:])
        self.assertLess(time.time() - started, 3.0 * SLOW)


if __name__ == "__main__":
    unittest.main()

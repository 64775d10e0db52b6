"""One overall deadline per request (issue 18 item 5): `timeouts.total` bounds every try of a
request together, a status answer is never asked again of the host that gave it, and the
errors confgate makes itself share the read-only 503's JSON shape."""

import json
import os
import socket
import sys
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "support"))
from confgate_harness import ClosedPort, ProxyTestCase  # noqa: E402


def routes(timeouts=""):
    return """routes:
  - match: {prefix: /}
    upstream: config-service
    kind: auto
%s""" % ("    timeouts: {%s}\n" % timeouts if timeouts else "")



def answer_503(connection):
    """etcd without quorum: every request gets 503."""
    while True:
        request = connection.read_request(timeout=60)
        if request is None:
            return
        body = b'{"message":"etcdserver: no leader"}'
        connection.send(b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: %d\r\n"
                        b"Content-Type: application/json\r\n\r\n%s" % (len(body), body))


class RequestDeadlineTest(ProxyTestCase, unittest.TestCase):
    def assert_local_error(self, status, headers, body, expected_status, error):
        self.assertEqual(status, expected_status, body)
        self.assertEqual(headers["Content-Type"], "application/json")
        self.assertEqual(headers["Cache-Control"], "no-store")
        self.assertEqual(headers["Retry-After"], "5")
        document = json.loads(body)
        self.assertEqual(sorted(document), ["error", "message", "upstream"])
        self.assertEqual((document["error"], document["upstream"]), (error, "config-service"))
        return document

    def tries(self, replicas, path):
        return sum(1 for replica in replicas for entry in replica.debug_requests()
                   if entry["uri"] == path)

    def test_total_bounds_every_try_together(self):
        replicas = self.start_replicas(3)
        proxy = self.start_proxy(replicas, workers=1, routes=routes("total: 1500ms"),
                                 upstream_extra="    timeouts: {connect: 1s, response: 1s}\n"
                                                "    retries: {attempts: 2}\n")
        for replica in replicas:
            replica.fault("hang")
        started = time.time()
        status, headers, body = self.request(proxy, "GET", "/v1/kv/slow")
        elapsed = time.time() - started
        # Three tries of 1 s each would take 3 s; the deadline ends it at 1.5 s.
        self.assertGreaterEqual(elapsed, 1.4)
        self.assertLess(elapsed, 2.4)
        document = self.assert_local_error(status, headers, body, 504, "upstream_timeout")
        self.assertIn("timeout", document["message"])
        self.assertEqual(self.tries(replicas, "/v1/kv/slow"), 2)

    def test_total_defaults_to_the_response_timeout(self):
        replicas = self.start_replicas(2)
        proxy = self.start_proxy(replicas, workers=1, routes=routes(),
                                 upstream_extra="    timeouts: {connect: 1s, response: 700ms}\n")
        for replica in replicas:
            replica.fault("hang")
        started = time.time()
        status, headers, body = self.request(proxy, "GET", "/v1/kv/slow")
        self.assertLess(time.time() - started, 1.3)
        self.assert_local_error(status, headers, body, 504, "upstream_timeout")
        self.assertEqual(self.tries(replicas, "/v1/kv/slow"), 1)

    def test_a_status_answer_is_never_retried_on_the_same_host(self):
        upstream = self.start_scripted_upstream(default=answer_503)
        proxy = self.start_proxy([upstream], workers=1, routes=routes(),
                                 upstream_extra="    retries: {attempts: 2}\n")
        status, _, body = self.request(proxy, "GET", "/v3/kv/range")
        # The host's own answer, once: asking it again would only take longer.
        self.assertEqual((status, body), (503, b'{"message":"etcdserver: no leader"}'))
        time.sleep(0.2)
        self.assertEqual(len(upstream.connection_of("/v3/kv/range")), 1)

    def test_a_status_answer_is_retried_once_on_each_other_host(self):
        first = self.start_scripted_upstream(default=answer_503)
        second = self.start_scripted_upstream(default=answer_503)
        proxy = self.start_proxy([first, second], workers=1, routes=routes(),
                                 upstream_extra="    retries: {attempts: 2}\n")
        status, _, _ = self.request(proxy, "GET", "/v3/kv/range")
        self.assertEqual(status, 503)
        time.sleep(0.2)
        self.assertEqual(len(first.connection_of("/v3/kv/range")), 1)
        self.assertEqual(len(second.connection_of("/v3/kv/range")), 1)

    def test_a_failed_connect_answers_in_the_read_only_shape(self):
        closed = ClosedPort()
        self.addCleanup(closed.close)
        proxy = self.start_proxy([closed], workers=1, routes=routes(),
                                 upstream_extra="    retries: {attempts: 0}\n")
        for method in ("GET", "PUT"):
            status, headers, body = self.request(proxy, method, "/v1/kv/x", body=b"v")
            document = self.assert_local_error(status, headers, body, 502, "bad_gateway")
            self.assertIn("connect", document["message"])


if __name__ == "__main__":
    unittest.main()

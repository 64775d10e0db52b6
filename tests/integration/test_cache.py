"""The response cache and read-only mode: the last good config keeps being served when every
replica is down."""

import json
import os
import resource
import select
import socket
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "support"))
from confgate_harness import Proxy, ProxyTestCase, Replica, write_confgate_config  # noqa: E402

CHECKS = """    health_check: {type: http, path: /health, interval: 200ms, timeout: 200ms,
                   healthy_threshold: 1, unhealthy_threshold: 1}
"""


def cached_routes(ttl="0s", key_headers="[]", persist="", coalesce="true"):
    return """routes:
  - match: {prefix: /v1/kv/, query: index}
    upstream: config-service
    kind: watch
  - match: {prefix: /echo, methods: [POST]}
    upstream: config-service
    kind: read
    cache: {enabled: true, default_ttl: %(ttl)s, key_headers: %(keys)s}
  - match: {prefix: /}
    upstream: config-service
    kind: auto
    cache: {enabled: true, default_ttl: %(ttl)s, max_stale: 1h, coalesce: %(coalesce)s,
            key_headers: %(keys)s%(persist)s}
""" % {"ttl": ttl, "keys": key_headers, "persist": persist, "coalesce": coalesce}


def seed_file(directory, count):
    path = os.path.join(directory, "seed")
    with open(path, "w") as handle:
        for index in range(count):
            handle.write("app/key-%d=value-%d\n" % (index, index))
    return path


def upstream_requests(replicas, uri):
    return sum(1 for replica in replicas for entry in replica.debug_requests()
               if entry["uri"] == uri)


class CacheTest(ProxyTestCase, unittest.TestCase):
    def test_fresh_hits_and_conditional_requests_are_answered_from_the_cache(self):
        replicas = self.start_replicas(1)
        proxy = self.start_proxy(replicas, routes=cached_routes(ttl="60s"))
        self.request(proxy, "PUT", "/v1/kv/hit", body=b"cached value")
        status, headers, body = self.request(proxy, "GET", "/v1/kv/hit")
        self.assertEqual((status, body), (200, b"cached value"))
        self.assertEqual(headers["Cache-Status"], "confgate; fwd=miss")
        for _ in range(5):
            status, headers, body = self.request(proxy, "GET", "/v1/kv/hit")
            self.assertEqual((status, body, headers["Cache-Status"]),
                             (200, b"cached value", "confgate; hit"))
            self.assertIn("Age", headers)
        etag = headers["ETag"]
        status, headers, body = self.request(proxy, "GET", "/v1/kv/hit",
                                             headers={"If-None-Match": etag})
        self.assertEqual((status, body), (304, b""))
        self.assertEqual(headers["ETag"], etag)
        self.assertEqual(upstream_requests(replicas, "/v1/kv/hit"), 2)  # PUT + first GET
        # The client can insist on a fresh answer.
        _, headers, _ = self.request(proxy, "GET", "/v1/kv/hit",
                                     headers={"Cache-Control": "no-cache"})
        self.assertEqual(headers["Cache-Status"], "confgate; fwd=stale")
        self.assertEqual(upstream_requests(replicas, "/v1/kv/hit"), 3)

    def test_authorization_never_crosses_clients(self):
        replicas = self.start_replicas(1)
        proxy = self.start_proxy(replicas, routes=cached_routes(
            ttl="60s", key_headers="[Authorization]"))
        for _ in range(2):
            for token in ("Bearer alice", "Bearer bob"):
                _, _, body = self.request(proxy, "GET", "/echo", headers={"Authorization": token})
                seen = dict((name.lower(), value)
                            for name, value in json.loads(body)["headers"])
                self.assertEqual(seen["authorization"], token)
        self.assertEqual(upstream_requests(replicas, "/echo"), 2)  # one per client, then hits

    def test_credentials_outside_the_key_are_never_stored(self):
        replicas = self.start_replicas(1)
        proxy = self.start_proxy(replicas, routes=cached_routes(ttl="60s"))
        for token in ("Bearer alice", "Bearer bob", "Bearer alice"):
            _, headers, body = self.request(proxy, "GET", "/echo", headers={"Authorization": token})
            seen = dict((name.lower(), value) for name, value in json.loads(body)["headers"])
            self.assertEqual(seen["authorization"], token)
            self.assertNotEqual(headers["Cache-Status"], "confgate; hit")
        self.assertEqual(upstream_requests(replicas, "/echo"), 3)

    def test_post_reads_key_on_their_body(self):
        replicas = self.start_replicas(1)
        proxy = self.start_proxy(replicas, routes=cached_routes(ttl="60s"))
        for body in (b'{"key":"a"}', b'{"key":"a"}', b'{"key":"b"}', b'{"key":"a"}'):
            status, _, reply = self.request(proxy, "POST", "/echo", body=body,
                                            headers={"Content-Type": "application/json"})
            self.assertEqual((status, reply), (200, body))
        self.assertEqual(upstream_requests(replicas, "/echo"), 2)

    def test_stale_if_error_in_normal_mode(self):
        replicas = self.start_replicas(1)
        proxy = self.start_proxy(replicas, routes=cached_routes(ttl="0s"),
                                 upstream_extra="    retries: {attempts: 0}")
        self.request(proxy, "PUT", "/v1/kv/sie", body=b"last good")
        self.assertEqual(self.request(proxy, "GET", "/v1/kv/sie")[2], b"last good")
        replicas[0].fault("error")
        status, headers, body = self.request(proxy, "GET", "/v1/kv/sie")
        self.assertEqual((status, body), (200, b"last good"))
        self.assertEqual(headers["Cache-Status"], "confgate; hit; fwd=stale")
        self.assertEqual(headers["X-Confgate-Mode"], "normal")
        replicas[0].stop()
        status, _, body = self.request(proxy, "GET", "/v1/kv/sie")
        self.assertEqual((status, body), (200, b"last good"))

    def test_concurrent_identical_misses_share_one_upstream_fetch(self):
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, 8192)), hard))
        replicas = self.start_replicas(3)
        proxy = self.start_proxy(replicas, routes=cached_routes(ttl="60s"))
        self.request(proxy, "PUT", "/v1/kv/hot", body=b"x")  # reaches one replica
        for replica in replicas:
            replica.put("hot", "hot value")
            replica.fault("delay", delay_ms=2000)
        clients = 1000
        sockets = []
        for _ in range(clients):
            sock = socket.create_connection(("127.0.0.1", proxy.port))
            sock.sendall(b"GET /v1/kv/hot HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            sockets.append(sock)
        replies = {sock: b"" for sock in sockets}
        open_sockets = set(sockets)
        deadline = time.time() + 30
        while open_sockets and time.time() < deadline:
            ready, _, _ = select.select(list(open_sockets)[:1000], [], [], 1)
            for sock in ready:
                chunk = sock.recv(65536)
                if chunk:
                    replies[sock] += chunk
                else:
                    open_sockets.discard(sock)
                    sock.close()
        for sock in open_sockets:
            sock.close()
        ok = sum(1 for reply in replies.values()
                 if reply.startswith(b"HTTP/1.1 200") and reply.endswith(b"hot value"))
        self.assertEqual(ok, clients)
        for replica in replicas:
            replica.fault("none")
        gets = sum(1 for replica in replicas for entry in replica.debug_requests()
                   if entry["uri"] == "/v1/kv/hot" and entry["method"] == "GET")
        self.assertEqual(gets, 1)

    def test_a_collapsed_answer_is_labelled_as_one(self):
        replicas = self.start_replicas(1)
        proxy = self.start_proxy(replicas, routes=cached_routes(ttl="0s"))
        self.request(proxy, "PUT", "/v1/kv/label", body=b"v")
        replicas[0].fault("delay", delay_ms=500)
        sockets = []
        for index in range(4):
            sock = socket.create_connection(("127.0.0.1", proxy.port))
            sock.sendall(b"GET /v1/kv/label HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            sockets.append(sock)
            if index == 0:
                time.sleep(0.2)  # the others arrive while the first fetch is in flight
        labels = []
        for sock in sockets:
            sock.settimeout(10)
            reply = b""
            while True:
                chunk = sock.recv(65536)
                if not chunk:
                    break
                reply += chunk
            sock.close()
            head = reply.split(b"\r\n\r\n")[0].decode()
            self.assertTrue(head.startswith("HTTP/1.1 200"), head)
            fields = dict(line.split(": ", 1) for line in head.split("\r\n")[1:])
            labels.append((fields["Cache-Status"], fields["Age"] if "collapsed" in
                           fields["Cache-Status"] else None))
        # The first fetched alone; of the three that queued behind it one fetched again (a
        # stale copy existed by then) and two shared that fetch: collapsed, not stale copies.
        self.assertEqual(labels[0], ("confgate; fwd=miss", None))
        self.assertEqual(sorted(labels[1:]), [("confgate; fwd=miss; collapsed", "0")] * 2 +
                         [("confgate; fwd=stale", None)])


class ReadOnlyServingTest(ProxyTestCase, unittest.TestCase):
    KEYS = 100

    def start_seeded(self, directory, ports=None):
        seed = seed_file(directory, self.KEYS)
        replicas = []
        for index in range(3):
            args = ["--seed", seed]
            if ports:
                args += ["--port", str(ports[index])]
            replica = Replica("replica-%d" % (index + 1), args)
            self.addCleanup(replica.stop)
            replicas.append(replica)
        return replicas

    def warm(self, proxy):
        for index in range(self.KEYS):
            status, _, body = self.request(proxy, "GET", "/v1/kv/app/key-%d" % index,
                                           headers={"Host": "config.example"})
            self.assertEqual((status, body), (200, b"value-%d" % index))

    def assert_served_read_only(self, proxy):
        for index in range(self.KEYS):
            # The Host is part of the key; a restarted proxy listens on a new test port.
            status, headers, body = self.request(proxy, "GET", "/v1/kv/app/key-%d" % index,
                                                 headers={"Host": "config.example"})
            self.assertEqual((status, body), (200, b"value-%d" % index))
            self.assertEqual(headers["Cache-Status"], "confgate; hit; fwd=stale")
            self.assertEqual(headers["X-Confgate-Mode"], "read-only")
            self.assertIn("Age", headers)

    def wait_for(self, proxy, text, timeout=10):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if any(text in line for line in proxy.stderr_lines()):
                return
            time.sleep(0.02)
        self.fail("no %r in the log" % text)

    def test_outage_served_from_cache_and_writes_refused(self):
        directory = tempfile.mkdtemp(prefix="confgate-cache-")
        replicas = self.start_seeded(directory)
        ports = [replica.port for replica in replicas]
        proxy = self.start_proxy(replicas, routes=cached_routes(), upstream_extra=CHECKS)
        self.warm(proxy)
        for replica in replicas:
            replica.stop()
        self.wait_for(proxy, '"to":"read_only"')
        self.assert_served_read_only(proxy)

        started = time.time()
        status, headers, body = self.request(proxy, "GET", "/v1/kv/app/unknown")
        # Answered on the spot, not after a connect attempt and its timeout; the bound leaves room
        # for a loaded CI machine.
        self.assertLess(time.time() - started, 0.5)
        self.assertEqual((status, headers["Cache-Control"]), (503, "no-store"))
        self.assertEqual(json.loads(body)["error"], "no_cached_copy")
        for method in ("PUT", "POST", "DELETE"):
            status, headers, body = self.request(proxy, method, "/v1/kv/app/key-1", body=b"new")
            self.assertEqual(status, 503)
            self.assertEqual(headers["Retry-After"], "5")
            self.assertEqual(json.loads(body)["error"], "read_only")
        # A conditional read gets a 304 from the stale copy.
        status, _, _ = self.request(proxy, "GET", "/v1/kv/app/key-1",
                                    headers={"If-None-Match": '"2"', "Host": "config.example"})
        self.assertEqual(status, 304)

        restarted = Replica("replica-1", ["--port", str(ports[0]), "--seed",
                                          os.path.join(directory, "seed")])
        self.addCleanup(restarted.stop)
        self.wait_for(proxy, '"to":"normal"')
        status, headers, body = self.request(proxy, "GET", "/v1/kv/app/key-1")
        self.assertEqual((status, body), (200, b"value-1"))
        self.assertEqual(headers["X-Replica-Id"], "replica-1")
        writes = [entry for entry in restarted.debug_requests() if entry["method"] != "GET"]
        self.assertEqual(writes, [], "a refused write reached a replica later")

    def test_restart_during_an_outage_keeps_serving_with_persist(self):
        directory = tempfile.mkdtemp(prefix="confgate-cache-")
        replicas = self.start_seeded(directory)
        snapshot = os.path.join(directory, "cache.snapshot")
        config = write_confgate_config(
            directory, replicas, upstream_extra=CHECKS,
            routes=cached_routes(persist=",\n            persist: {path: %s, interval: 200ms}"
                                 % snapshot))
        proxy = Proxy(config)
        self.addCleanup(proxy.kill)
        self.warm(proxy)
        for replica in replicas:
            replica.stop()
        self.assertEqual(proxy.terminate(), 0)  # writes the snapshot on the way out
        self.assertTrue(os.path.exists(snapshot))

        second = Proxy(config)
        self.addCleanup(second.kill)
        self.assertTrue(any("cache snapshot loaded" in line for line in second.stderr_lines()))
        self.wait_for(second, '"to":"read_only"')
        self.assert_served_read_only(second)

    def test_snapshot_entries_are_stale_until_revalidated(self):
        # A snapshot's times come from disk and a wall clock that may have moved: with the
        # replicas up, a loaded entry is fetched again (then cached fresh), never a fresh hit.
        # And a writer killed mid-write left temp files behind, which start-up removes.
        directory = tempfile.mkdtemp(prefix="confgate-cache-")
        replicas = self.start_seeded(directory)
        snapshot = os.path.join(directory, "cache.snapshot")
        config = write_confgate_config(
            directory, replicas, upstream_extra=CHECKS,
            routes=cached_routes(
                ttl="1h", persist=",\n            persist: {path: %s, interval: 10s}" % snapshot))
        proxy = Proxy(config)
        self.addCleanup(proxy.kill)
        self.warm(proxy)
        self.assertEqual(proxy.terminate(), 0)
        self.assertTrue(os.path.exists(snapshot))
        stale_temps = [snapshot + ".tmp", snapshot + ".tmp.4242"]
        for path in stale_temps:
            with open(path, "wb") as handle:
                handle.write(b"CONFGATE-CACHE\n half written")

        second = Proxy(config)
        self.addCleanup(second.kill)
        self.assertTrue(any("cache snapshot loaded" in line for line in second.stderr_lines()))
        self.assertEqual([path for path in stale_temps if os.path.exists(path)], [])
        status, headers, body = self.request(second, "GET", "/v1/kv/app/key-1",
                                             headers={"Host": "config.example"})
        self.assertEqual((status, body), (200, b"value-1"))
        self.assertEqual(headers["Cache-Status"], "confgate; fwd=stale")
        self.assertIn("X-Replica-Id", headers)
        status, headers, body = self.request(second, "GET", "/v1/kv/app/key-1",
                                             headers={"Host": "config.example"})
        self.assertEqual((status, body), (200, b"value-1"))
        self.assertEqual(headers["Cache-Status"], "confgate; hit")
        self.assertGreaterEqual(int(headers["Age"]), 0)

    def test_a_corrupt_snapshot_is_ignored(self):
        directory = tempfile.mkdtemp(prefix="confgate-cache-")
        replicas = self.start_seeded(directory)
        snapshot = os.path.join(directory, "cache.snapshot")
        with open(snapshot, "wb") as handle:
            handle.write(b"CONFGATE-CACHE\n\x10garbage")
        proxy = self.start_proxy(replicas, routes=cached_routes(
            persist=",\n            persist: {path: %s, interval: 10s}" % snapshot))
        self.assertTrue(any("cache snapshot not loaded" in line for line in proxy.stderr_lines()))
        self.assertEqual(self.request(proxy, "GET", "/v1/kv/app/key-1")[2], b"value-1")


if __name__ == "__main__":
    unittest.main()

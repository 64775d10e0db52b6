"""Security properties of the defaults (docs/security.md), against the real binary: the admin
listener's exposure and hardening, no secrets in logs or /config, no response splitting from
upstream bytes, sanitised request ids and forwarding headers, hop-by-hop fields stripped both
ways, and route prefixes that dot-segments cannot step around. Request smuggling, limits and
timeouts are covered by test_proxy_hostile.py."""

import http.client
import json
import os
import re
import socket
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "support"))
from confgate_harness import (Proxy, ProxyTestCase, admin_call, is_closed,  # noqa: E402
                              raw_exchange, write_confgate_config)

UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")


def write_config(directory, replicas, admin_address="127.0.0.1:0", token_file=None, **options):
    path = write_confgate_config(directory, replicas, **options)
    admin = "admin:\n  address: %s\n" % admin_address
    if token_file:
        admin += "  token_file: %s\n" % token_file
    with open(path) as handle:
        text = handle.read().replace("admin:\n  address: 127.0.0.1:0\n", admin)
    with open(path, "w") as handle:
        handle.write(text)
    return path


def log_entries(lines):
    entries = []
    for line in lines:
        try:
            entries.append(json.loads(line))
        except ValueError:
            pass
    return entries


def status_of(reply):
    """The status code of the first response in raw bytes."""
    match = re.match(rb"HTTP/1\.1 (\d{3}) ", reply)
    return int(match.group(1)) if match else None


def head_of(reply):
    """The first head in raw bytes, with the CRLF of its last field."""
    return reply.partition(b"\r\n\r\n")[0] + b"\r\n"


def answer_by_path(replies):
    """A ScriptedUpstream script: answers one request with the raw bytes mapped to its path
    (404 for others), then closes the connection."""
    def script(connection):
        request = connection.read_request()
        if request is not None:
            connection.send(replies.get(
                request[1], b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n"))
    return script


class AdminExposureTest(ProxyTestCase, unittest.TestCase):
    WARNING = "admin listener is reachable from other hosts"

    def start(self, admin_address, token=None):
        replicas = self.start_replicas(1)
        directory = tempfile.mkdtemp(prefix="confgate-security-")
        token_file = None
        if token:
            token_file = os.path.join(directory, "admin.token")
            with open(token_file, "w") as handle:
                handle.write(token + "\n")
        proxy = Proxy(write_config(directory, replicas, admin_address, token_file))
        self.addCleanup(proxy.kill)
        return proxy

    def warnings(self, proxy):
        return [entry for entry in log_entries(proxy.stderr_lines())
                if entry.get("level") == "warn" and self.WARNING in entry.get("msg", "")]

    def test_loopback_admin_starts_quietly(self):
        proxy = self.start("127.0.0.1:0")
        self.assertEqual(self.warnings(proxy), [])

    def test_admin_off_loopback_is_warned_about_at_start_up(self):
        proxy = self.start("0.0.0.0:0")
        warnings = self.warnings(proxy)
        self.assertEqual(len(warnings), 1, proxy.stderr_lines())
        self.assertEqual(warnings[0]["address"], "0.0.0.0:%d" % proxy.admin_port)
        self.assertIn("refused from other hosts", warnings[0]["mutating_calls"])

        with_token = self.start("0.0.0.0:0", token="exposure-test-token")
        warnings = self.warnings(with_token)
        self.assertEqual(len(warnings), 1)
        self.assertIn("bearer token", warnings[0]["mutating_calls"])
        self.assertNotIn("exposure-test-token", "\n".join(with_token.stderr_lines()))


class AdminHardeningTest(ProxyTestCase, unittest.TestCase):
    def setUp(self):
        self.replicas = self.start_replicas(1)
        self.proxy = self.start_proxy(self.replicas, workers=1)

    def test_oversize_admin_request_head_is_refused(self):
        with socket.create_connection(("127.0.0.1", self.proxy.admin_port), timeout=5) as sock:
            try:
                sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 32768 +
                             b"\r\n\r\n")
            except (BrokenPipeError, ConnectionResetError):
                pass  # refused before it was all sent
            sock.settimeout(3)
            reply = b""
            try:
                while True:
                    chunk = sock.recv(65536)
                    if not chunk:
                        break
                    reply += chunk
            except (socket.timeout, ConnectionResetError):
                pass
        self.assertEqual(status_of(reply), 400, reply[:200])  # evhttp's answer to a long head
        self.assertNotIn(b"ok\n", reply)
        self.assertEqual(admin_call(self.proxy, "GET", "/healthz"), (200, "ok\n"))

    def test_silent_admin_connections_are_closed(self):
        # evhttp's default is to wait for ever; confgate sets 10 s.
        started = time.time()
        idle = socket.create_connection(("127.0.0.1", self.proxy.admin_port), timeout=5)
        partial = socket.create_connection(("127.0.0.1", self.proxy.admin_port), timeout=5)
        self.addCleanup(idle.close)
        self.addCleanup(partial.close)
        partial.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: a")
        self.assertTrue(is_closed(idle, timeout=20), "an idle admin connection stayed open")
        self.assertTrue(is_closed(partial, timeout=max(1.0, 20 - (time.time() - started))),
                        "a half-sent admin request kept its connection")
        self.assertLess(time.time() - started, 20)
        self.assertEqual(admin_call(self.proxy, "GET", "/healthz"), (200, "ok\n"))

    def test_mutating_calls_from_web_pages_are_refused(self):
        mode = "/upstreams/config-service/mode"
        for origin in ("http://evil.example", "null", "http://127.0.0.1:%d" % self.proxy.admin_port):
            status, _ = admin_call(self.proxy, "POST", mode, b'{"read_only": true}',
                                   {"Origin": origin, "Content-Type": "text/plain"})
            self.assertEqual(status, 403, origin)
        self.assertEqual(admin_call(self.proxy, "POST", "/reload", b"",
                                    {"Origin": "http://evil.example"})[0], 403)
        upstream = json.loads(admin_call(self.proxy, "GET", "/status")[1])["upstreams"][0]
        self.assertEqual(upstream["mode"], "normal")
        self.assertEqual(self.request(self.proxy, "PUT", "/v1/kv/still-writable", body=b"1")[0],
                         200)
        self.assertIn('confgate_config_reloads_total{result="success"} 0',
                      admin_call(self.proxy, "GET", "/metrics")[1])
        # A tool on this host (no Origin) is still served.
        self.assertEqual(admin_call(self.proxy, "POST", mode, b'{"read_only": null}')[0], 200)


class SecretsNotLoggedTest(ProxyTestCase, unittest.TestCase):
    SECRETS = ["AuthzSecret1", "CookieSecret2", "ProxySecret3", "ConsulSecret4", "QuerySecret5",
               "AdminSecret6", "WrongSecret7"]

    def test_credentials_never_reach_the_logs_or_the_admin_output(self):
        replica = self.start_replicas(1)[0]
        directory = tempfile.mkdtemp(prefix="confgate-security-")
        token_file = os.path.join(directory, "admin.token")
        with open(token_file, "w") as handle:
            handle.write("AdminSecret6\n")
        proxy = Proxy(write_config(directory, [replica], token_file=token_file, workers=1))
        self.addCleanup(proxy.kill)
        credentials = {
            "Authorization": "Bearer AuthzSecret1",
            "Cookie": "session=CookieSecret2",
            "Proxy-Authorization": "Basic ProxySecret3",
            "X-Consul-Token": "ConsulSecret4",
        }
        # Proxied, with the secret in the query too.
        self.assertEqual(self.request(proxy, "PUT", "/v1/kv/app?token=QuerySecret5",
                                      headers=credentials, body=b"v")[0], 200)
        self.assertEqual(self.request(proxy, "GET", "/v1/kv/app?token=QuerySecret5",
                                      headers=credentials)[0], 200)
        # Rejected by the codec (obs-fold) and by the path check.
        head = "".join("%s: %s\r\n" % item for item in credentials.items()).encode()
        self.assertEqual(status_of(raw_exchange(
            proxy.port, b"GET /v1/kv/app HTTP/1.1\r\nHost: x\r\n" + head +
            b"X-A: a\r\n folded\r\n\r\n")), 400)
        self.assertEqual(status_of(raw_exchange(
            proxy.port, b"GET /v1/kv/../app?token=QuerySecret5 HTTP/1.1\r\nHost: x\r\n" + head +
            b"\r\n")), 400)
        # Admin calls with a wrong and the right token (the reload logs).
        self.assertEqual(admin_call(proxy, "POST", "/reload", b"",
                                    {"Authorization": "Bearer WrongSecret7"})[0], 401)
        self.assertEqual(admin_call(proxy, "POST", "/reload", b"",
                                    {"Authorization": "Bearer AdminSecret6"})[0], 200)
        # The upstream gone: connect failures and retries are logged.
        replica.stop()
        self.assertEqual(self.request(proxy, "GET", "/v1/kv/app?token=QuerySecret5",
                                      headers=credentials)[0], 502)
        config = admin_call(proxy, "GET", "/config")[1]
        self.assertEqual(json.loads(config)["admin"]["token_file"], "[redacted]")
        outputs = {"/config": config, "/status": admin_call(proxy, "GET", "/status")[1],
                   "/metrics": admin_call(proxy, "GET", "/metrics")[1]}
        entries = proxy.access_log(count=5)
        self.assertGreaterEqual(len(entries), 5)
        self.assertTrue(any(entry["status"] == 502 for entry in entries))
        self.assertTrue(any(entry.get("msg") == "upstream connect failed"
                            for entry in log_entries(proxy.stderr_lines())))
        self.assertEqual(proxy.terminate(), 0)
        proxy.kill()  # joins the readers: every line is in
        outputs["access log"] = json.dumps(proxy.access_log(count=0, timeout=0))
        outputs["process log"] = "\n".join(proxy.stderr_lines())
        for where, text in outputs.items():
            for secret in self.SECRETS:
                self.assertNotIn(secret, text, "%s leaked into %s" % (secret, where))


class ResponseSplittingTest(ProxyTestCase, unittest.TestCase):
    """Bytes from a replica never reach the client's head unless they are well-formed fields."""

    HOSTILE = {
        "/cr-in-value": b"HTTP/1.1 200 OK\r\nX-A: a\rSet-Cookie: injected=1\r\n"
                        b"Content-Length: 2\r\n\r\nok",
        "/lf-in-location": b"HTTP/1.1 302 Found\r\nLocation: /next\nSet-Cookie: injected=1\r\n"
                           b"Content-Length: 0\r\n\r\n",
        "/nul-in-value": b"HTTP/1.1 200 OK\r\nX-A: a\x00Set-Cookie: injected=1\r\n"
                         b"Content-Length: 2\r\n\r\nok",
        "/control-in-value": b"HTTP/1.1 200 OK\r\nX-A: a\x0bSet-Cookie: injected=1\r\n"
                             b"Content-Length: 2\r\n\r\nok",
        "/nul-in-reason": b"HTTP/1.1 200 O\x00Set-Cookie: injected=1\r\nContent-Length: 2\r\n"
                          b"\r\nok",
        "/escape-in-reason": b"HTTP/1.1 200 OK\x1b[2J\r\nContent-Length: 2\r\n\r\nok",
        "/cr-in-reason": b"HTTP/1.1 200 OK\rSet-Cookie: injected=1\r\nContent-Length: 2\r\n\r\nok",
    }

    def test_hostile_upstream_heads_become_502(self):
        upstream = self.start_scripted_upstream(default=answer_by_path(dict(self.HOSTILE, **{
            "/fine": b"HTTP/1.1 200 Fine\r\nLocation: /next\r\nContent-Length: 2\r\n\r\nok"})))
        proxy = self.start_proxy([upstream], workers=1)
        for path in self.HOSTILE:
            with self.subTest(path):
                reply = raw_exchange(proxy.port, b"GET %s HTTP/1.1\r\nHost: x\r\n"
                                     b"Connection: close\r\n\r\n" % path.encode())
                self.assertEqual(status_of(reply), 502, reply[:200])
                self.assertNotIn(b"injected", reply)
                self.assertNotIn(b"\x00", reply)
                self.assertNotIn(b"\x1b", reply)
                self.assertIn(b"Cache-Control: no-store\r\n", reply)
        reply = raw_exchange(proxy.port, b"GET /fine HTTP/1.1\r\nHost: x\r\n"
                             b"Connection: close\r\n\r\n")
        self.assertTrue(reply.startswith(b"HTTP/1.1 200 Fine\r\n"), reply[:200])
        self.assertIn(b"\r\nLocation: /next\r\n", reply)


class RequestIdTest(ProxyTestCase, unittest.TestCase):
    def setUp(self):
        self.replicas = self.start_replicas(1)
        self.proxy = self.start_proxy(self.replicas, workers=1)

    def upstream_id(self, request_id):
        _, _, body = self.request(self.proxy, "GET", "/echo",
                                  headers={"X-Request-Id": request_id})
        ids = [value for name, value in json.loads(body)["headers"]
               if name.lower() == "x-request-id"]
        self.assertEqual(len(ids), 1)
        return ids[0]

    def test_unsafe_request_ids_are_replaced_upstream_and_in_local_replies(self):
        unsafe = ["x" * 129, "abc<script>", "abc%0d%0aSet-Cookie:x", "abc def", "a,b", "\u00e9t\u00e9"]
        for request_id in unsafe:
            with self.subTest(request_id):
                forwarded = self.upstream_id(request_id)
                self.assertRegex(forwarded, UUID)
        kept = "edge-7f3a:retry_2.x"
        self.assertEqual(self.upstream_id(kept), kept)
        self.assertEqual(self.upstream_id("y" * 128), "y" * 128)

        # confgate's own answers echo the id it forwarded: only ever a safe one.
        self.assertEqual(admin_call(self.proxy, "POST", "/upstreams/config-service/mode",
                                    b'{"read_only": true}')[0], 200)
        for request_id in unsafe:
            status, headers, _ = self.request(self.proxy, "PUT", "/v1/kv/x", body=b"1",
                                              headers={"X-Request-Id": request_id})
            self.assertEqual(status, 503)
            self.assertRegex(headers["X-Request-Id"], UUID)
        status, headers, _ = self.request(self.proxy, "PUT", "/v1/kv/x", body=b"1",
                                          headers={"X-Request-Id": kept})
        self.assertEqual((status, headers["X-Request-Id"]), (503, kept))

    def test_raw_cr_in_a_request_id_is_refused_not_echoed(self):
        reply = raw_exchange(self.proxy.port, b"GET /echo HTTP/1.1\r\nHost: x\r\n"
                             b"X-Request-Id: abc\rSet-Cookie: injected=1\r\n\r\n")
        self.assertEqual(status_of(reply), 400, reply[:200])
        self.assertNotIn(b"injected", reply)
        self.assertNotIn(b"X-Request-Id", reply)


class ForwardingHeadersTest(ProxyTestCase, unittest.TestCase):
    def setUp(self):
        self.replicas = self.start_replicas(1)
        self.proxy = self.start_proxy(self.replicas, workers=1)

    def echo(self, headers):
        """Sends GET /echo with `headers` (a list: names may repeat); returns what the replica
        received, as name -> list of values."""
        connection = http.client.HTTPConnection("127.0.0.1", self.proxy.port, timeout=10)
        try:
            connection.putrequest("GET", "/echo")
            for name, value in headers:
                connection.putheader(name, value)
            connection.endheaders()
            body = connection.getresponse().read()
        finally:
            connection.close()
        seen = {}
        for name, value in json.loads(body)["headers"]:
            seen.setdefault(name.lower(), []).append(value)
        return seen

    def test_client_address_headers_cannot_be_forged(self):
        seen = self.echo([
            ("X-Forwarded-For", "6.6.6.6"),         # forged by the client
            ("X-Forwarded-For", "198.51.100.4"),    # as a proxy in front adds its own field
            ("X-Real-IP", "6.6.6.6"),
            ("X-Forwarded-Proto", "https"),
            ("Forwarded", "for=6.6.6.6;proto=https"),
        ])
        # Every incoming field is kept, in order; the peer confgate saw is always last.
        self.assertEqual(seen["x-forwarded-for"], ["6.6.6.6, 198.51.100.4, 127.0.0.1"])
        self.assertEqual(seen["x-real-ip"], ["127.0.0.1"])
        self.assertEqual(seen["x-forwarded-proto"], ["http"])
        # Not managed by confgate: passed on as the client wrote it (docs/security.md).
        self.assertEqual(seen["forwarded"], ["for=6.6.6.6;proto=https"])

    def test_proxy_credentials_httpoxy_and_connection_named_fields_are_not_forwarded(self):
        seen = self.echo([
            ("Proxy-Authorization", "Basic cHJveHk6c2VjcmV0"),
            ("Proxy", "http://evil.example:3128"),
            ("Connection", "X-Hop-Secret"),
            ("X-Hop-Secret", "s"),
            ("Authorization", "Bearer end-to-end"),
        ])
        for name in ("proxy-authorization", "proxy", "x-hop-secret", "connection"):
            self.assertNotIn(name, seen)
        self.assertEqual(seen["authorization"], ["Bearer end-to-end"])

    def test_hop_by_hop_fields_of_responses_are_not_forwarded(self):
        upstream = self.start_scripted_upstream(default=answer_by_path({"/hop": (
            b"HTTP/1.1 200 OK\r\nConnection: X-Hop-Secret\r\nX-Hop-Secret: s\r\n"
            b"Keep-Alive: timeout=5\r\nProxy-Authenticate: Basic realm=\"replica\"\r\n"
            b"Proxy-Connection: keep-alive\r\nUpgrade: h2c\r\nTrailer: X-T\r\nTE: trailers\r\n"
            b"X-Kept: 1\r\nContent-Length: 2\r\n\r\nok")}))
        proxy = self.start_proxy([upstream], workers=1)
        status, headers, body = self.request(proxy, "GET", "/hop")
        self.assertEqual((status, body, headers["X-Kept"]), (200, b"ok", "1"))
        names = {name.lower() for name in headers}
        for name in ("x-hop-secret", "keep-alive", "proxy-authenticate", "proxy-connection",
                     "upgrade", "trailer", "te"):
            self.assertNotIn(name, names)


class RoutePrefixTest(ProxyTestCase, unittest.TestCase):
    """Only /v1/kv/ is exposed; nothing else of the replica may be reached through it."""

    def setUp(self):
        self.replicas = self.start_replicas(1)
        self.proxy = self.start_proxy(self.replicas, workers=1, routes="""routes:
  - match: {prefix: /v1/kv/}
    upstream: config-service
    kind: auto
""")

    def test_dot_segments_cannot_step_out_of_a_prefix_route(self):
        for path in (b"/v1/kv/../stats", b"/v1/kv/%2e%2e/stats", b"/v1/kv/.%2E/stats",
                     b"/v1/kv/..;/stats", b"/v1/kv/..%2fstats", b"/v1/kv/..\\stats",
                     b"/v1/kv/./../stats", b"/v1/kv/a/../../stats"):
            with self.subTest(path):
                reply = raw_exchange(self.proxy.port, b"GET " + path + b" HTTP/1.1\r\nHost: x\r\n"
                                     b"\r\n")
                self.assertEqual(status_of(reply), 400, reply[:200])
                self.assertIn(b"Connection: close\r\n", head_of(reply))
        uris = [entry["uri"] for entry in self.replicas[0].debug_requests()]
        self.assertEqual(uris, [])

    def test_only_the_exposed_prefix_reaches_the_replica(self):
        for path in ("/stats", "//v1/kv/x", "/v1/%6bv/x", "/V1/KV/x", "/v1/kv"):
            with self.subTest(path):
                status, headers, body = self.request(self.proxy, "GET", path)
                self.assertEqual((status, body), (404, b"no route\n"))
                self.assertNotIn("X-Replica-Id", headers)
        # Dots inside names are no dot-segments and pass.
        for path in ("/v1/kv/app.yaml", "/v1/kv/a..b", "/v1/kv/.hidden"):
            with self.subTest(path):
                status, headers, _ = self.request(self.proxy, "GET", path)
                self.assertEqual((status, headers.get("X-Replica-Id")), (404, "replica-1"))
        self.assertEqual([entry["uri"] for entry in self.replicas[0].debug_requests()],
                         ["/v1/kv/app.yaml", "/v1/kv/a..b", "/v1/kv/.hidden"])


if __name__ == "__main__":
    unittest.main()

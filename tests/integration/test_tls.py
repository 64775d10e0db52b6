"""TLS at the edge and to the replicas. Every key and certificate is made here, at test time,
with the openssl command line."""

import http.client
import json
import os
import socket
import socketserver
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "support"))
from confgate_harness import CONFGATE_BIN, Proxy, ProxyTestCase  # noqa: E402


def run(*args, **kwargs):
    return subprocess.run(list(args), capture_output=True, text=True, timeout=60, **kwargs)


class Pki:
    """A CA and certificates signed by it, in a temporary directory."""

    def __init__(self, name="test-ca"):
        self.directory = tempfile.mkdtemp(prefix="confgate-pki-")
        self.ca_key = self.path(name + ".key")
        self.ca = self.path(name + ".crt")
        run("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", self.ca_key,
            "-out", self.ca, "-subj", "/CN=" + name, "-days", "2")

    def path(self, name):
        return os.path.join(self.directory, name)

    def issue(self, name, sans, days="2"):
        key, csr, crt = self.path(name + ".key"), self.path(name + ".csr"), self.path(name + ".crt")
        extensions = self.path(name + ".ext")
        with open(extensions, "w") as handle:
            handle.write("subjectAltName=%s\n" % ",".join(sans))
        run("openssl", "req", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", csr,
            "-subj", "/CN=" + name)
        result = run("openssl", "x509", "-req", "-in", csr, "-CA", self.ca, "-CAkey", self.ca_key,
                     "-CAcreateserial", "-out", crt, "-days", days, "-extfile", extensions)
        assert result.returncode == 0, result.stderr
        return crt, key


class TlsBackend:
    """An HTTPS upstream: answers every request with 200 and its name; optionally requires a
    client certificate signed by `client_ca`."""

    def __init__(self, certificate, key, client_ca=None):
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(certificate, key)
        if client_ca:
            context.verify_mode = ssl.CERT_REQUIRED
            context.load_verify_locations(client_ca)
        self.requests = 0
        outer = self

        class Handler(socketserver.BaseRequestHandler):
            def handle(self):
                try:
                    conn = context.wrap_socket(self.request, server_side=True)
                except (ssl.SSLError, OSError):
                    return
                try:
                    data = b""
                    while True:
                        while b"\r\n\r\n" not in data:
                            chunk = conn.recv(65536)
                            if not chunk:
                                return
                            data += chunk
                        head, _, data = data.partition(b"\r\n\r\n")
                        outer.requests += 1
                        body = b"tls-backend"
                        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s"
                                     % (len(body), body))
                except (ssl.SSLError, OSError):
                    return

        self.server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.address = "127.0.0.1:%d" % self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


def write_config(directory, text):
    path = os.path.join(directory, "confgate.yaml")
    with open(path, "w") as handle:
        handle.write(text)
    return path


def edge_config(replica_address, certificates, extra_limits=""):
    entries = "\n".join("        - {certificate: %s, private_key: %s}" % pair
                        for pair in certificates)
    return """listeners:
  - address: 127.0.0.1:0
    tls:
      certificates:
%s
admin: {address: 127.0.0.1:0}
workers: 1
%supstreams:
  config-service:
    servers:
      - {address: %s}
routes:
  - {match: {prefix: /}, upstream: config-service}
""" % (entries, extra_limits, replica_address)


def upstream_config(backend_address, tls_yaml):
    return """listeners:
  - address: 127.0.0.1:0
admin: {address: 127.0.0.1:0}
workers: 1
upstreams:
  secure:
    servers:
      - {address: %s}
    tls: %s
    retries: {attempts: 0}
routes:
  - {match: {prefix: /}, upstream: secure}
""" % (backend_address, tls_yaml)


class ListenerTlsTest(ProxyTestCase, unittest.TestCase):
    def setUp(self):
        self.pki = Pki()
        self.a = self.pki.issue("a.example", ["DNS:a.example"])
        self.b = self.pki.issue("b.example", ["DNS:b.example", "DNS:*.b.example"])
        self.replica = self.start_replicas(1)[0]
        self.path = write_config(self.pki.directory, edge_config(
            self.replica.address, [self.a, self.b], "limits: {header_timeout: 1s}\n"))
        self.proxy = Proxy(self.path)
        self.addCleanup(self.proxy.kill)

    def context(self):
        context = ssl.create_default_context(cafile=self.pki.ca)
        return context

    def https(self, server_name, path="/health", connection=None):
        own = connection is None
        if own:
            connection = http.client.HTTPSConnection("127.0.0.1", self.proxy.port, timeout=5,
                                                     context=self.context())
            connection._tunnel_host = None
            connection.host = server_name  # SNI and certificate name
            connection.sock = self.context().wrap_socket(
                socket.create_connection(("127.0.0.1", self.proxy.port)), server_hostname=server_name)
        connection.request("GET", path, headers={"Host": server_name})
        response = connection.getresponse()
        body = response.read()
        peer = connection.sock.getpeercert()
        if own:
            connection.close()
        return response.status, body, peer

    def test_sni_picks_the_certificate_and_requests_are_proxied(self):
        status, body, peer = self.https("a.example")
        self.assertEqual((status, body), (200, b"ok\n"))
        self.assertIn(("DNS", "a.example"), peer["subjectAltName"])
        _, _, peer = self.https("b.example")
        self.assertIn(("DNS", "b.example"), peer["subjectAltName"])
        _, _, peer = self.https("x.b.example")  # wildcard
        self.assertIn(("DNS", "*.b.example"), peer["subjectAltName"])
        seen = {name.lower(): value for name, value in self.replica.debug_requests()[-1]["headers"]}
        self.assertEqual(seen["x-forwarded-proto"], "https")

    def test_old_protocols_are_refused_and_alpn_is_http11(self):
        old = run("openssl", "s_client", "-connect", "127.0.0.1:%d" % self.proxy.port,
                  "-tls1_1", "-servername", "a.example", input="")
        self.assertNotEqual(old.returncode, 0)
        modern = run("openssl", "s_client", "-connect", "127.0.0.1:%d" % self.proxy.port,
                     "-servername", "a.example", "-alpn", "h2,http/1.1", "-CAfile", self.pki.ca,
                     input="")
        self.assertIn("ALPN protocol: http/1.1", modern.stdout)
        self.assertIn("Verify return code: 0 (ok)", modern.stdout)

    def test_sessions_resume_with_tickets(self):
        session = os.path.join(self.pki.directory, "session.pem")
        common = ["openssl", "s_client", "-connect", "127.0.0.1:%d" % self.proxy.port,
                  "-servername", "a.example", "-tls1_2", "-CAfile", self.pki.ca]
        first = run(*common, "-sess_out", session, input="")
        self.assertIn("New, TLSv1.2", first.stdout)
        second = run(*common, "-sess_in", session, input="")
        self.assertIn("Reused, TLSv1.2", second.stdout)

    def test_a_stalled_handshake_is_cut_off(self):
        with socket.create_connection(("127.0.0.1", self.proxy.port), timeout=5) as sock:
            sock.settimeout(3)
            started = time.time()
            try:
                self.assertEqual(sock.recv(100), b"")
            except ConnectionResetError:
                pass
            self.assertLess(time.time() - started, 2.5)

    def test_certificates_are_swapped_by_reload_without_dropping_connections(self):
        kept = http.client.HTTPSConnection("127.0.0.1", self.proxy.port, timeout=5)
        kept.sock = self.context().wrap_socket(
            socket.create_connection(("127.0.0.1", self.proxy.port)), server_hostname="a.example")
        first_serial = kept.sock.getpeercert()["serialNumber"]
        self.assertEqual(self.https("a.example", connection=kept)[0], 200)
        renewed = self.pki.issue("a.example", ["DNS:a.example"])  # same files, new certificate
        self.assertEqual(renewed, self.a)
        request = urllib.request.Request(
            "http://127.0.0.1:%d/reload" % self.proxy.admin_port, data=b"", method="POST")
        self.assertEqual(urllib.request.urlopen(request, timeout=5).status, 200)
        self.assertEqual(self.https("a.example", connection=kept)[0], 200)  # same connection
        _, _, peer = self.https("a.example")
        self.assertNotEqual(peer["serialNumber"], first_serial)
        kept.close()


class UpstreamTlsTest(ProxyTestCase, unittest.TestCase):
    def setUp(self):
        self.pki = Pki()
        self.server = self.pki.issue("backend", ["IP:127.0.0.1"])

    def start(self, backend, tls_yaml):
        proxy = Proxy(write_config(tempfile.mkdtemp(prefix="confgate-tls-"),
                                   upstream_config(backend.address, tls_yaml)))
        self.addCleanup(proxy.kill)
        return proxy

    def backend(self, client_ca=None):
        backend = TlsBackend(*self.server, client_ca=client_ca)
        self.addCleanup(backend.stop)
        return backend

    def test_verified_upstream_with_health_checks_over_tls(self):
        backend = self.backend()
        proxy = self.start(backend, "{ca_file: %s}\n    health_check: {type: http, path: /health, "
                           "interval: 200ms, timeout: 500ms}" % self.pki.ca)
        for _ in range(3):
            status, _, body = self.request(proxy, "GET", "/x")
            self.assertEqual((status, body), (200, b"tls-backend"))
        with urllib.request.urlopen("http://127.0.0.1:%d/status" % proxy.admin_port) as reply:
            host = json.loads(reply.read())["upstreams"][0]["hosts"][0]
        self.assertEqual(host["health"], "healthy")  # the checks spoke TLS too

    def test_wrong_ca_is_a_502_not_a_crash(self):
        backend = self.backend()
        other = Pki("other-ca")
        proxy = self.start(backend, "{ca_file: %s}" % other.ca)
        status, headers, _ = self.request(proxy, "GET", "/x")
        self.assertEqual(status, 502)
        self.assertEqual(headers["Cache-Control"], "no-store")
        self.assertIsNone(proxy.process.poll())
        self.assertEqual(backend.requests, 0)

    def test_mutual_tls(self):
        client = self.pki.issue("confgate-client", ["DNS:confgate"])
        backend = self.backend(client_ca=self.pki.ca)
        without = self.start(backend, "{ca_file: %s}" % self.pki.ca)
        self.assertEqual(self.request(without, "GET", "/x")[0], 502)
        with_cert = self.start(backend, "{ca_file: %s, certificate: %s, private_key: %s}"
                               % (self.pki.ca, client[0], client[1]))
        self.assertEqual(self.request(with_cert, "GET", "/x")[:3:2], (200, b"tls-backend"))


class TlsCheckTest(unittest.TestCase):
    def check(self, text):
        directory = tempfile.mkdtemp(prefix="confgate-tls-check-")
        result = run(CONFGATE_BIN, "--check", "-c", write_config(directory, text))
        return result.returncode, result.stdout

    def test_clear_errors_for_bad_files(self):
        pki = Pki()
        good = pki.issue("good", ["DNS:good"])
        other = pki.issue("other", ["DNS:other"])
        expired = pki.issue("expired", ["DNS:expired"], days="-1")
        self.assertEqual(self.check(edge_config("127.0.0.1:1", [good]))[0], 0)
        code, out = self.check(edge_config("127.0.0.1:1", [(good[0], other[1])]))
        self.assertEqual(code, 1)
        self.assertIn("listeners[0].tls.private_key: line", out)
        self.assertIn("does not match the certificate", out)
        code, out = self.check(edge_config("127.0.0.1:1", [expired]))
        self.assertIn("has expired", out)
        code, out = self.check(edge_config("127.0.0.1:1", [("/nonexistent.crt", good[1])]))
        self.assertIn("cannot read /nonexistent.crt", out)
        code, out = self.check(upstream_config("127.0.0.1:1", "{server_name: x}"))
        self.assertIn("insecure_skip_verify", out)


if __name__ == "__main__":
    unittest.main()

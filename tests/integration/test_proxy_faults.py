"""Upstream faults with real processes: the real confgate binary in front of scripted upstream
sockets on 127.0.0.1 (ephemeral ports) that reset, half-close, truncate, send garbage or extra
bytes, stall, never answer, or do not listen at all.

In every case the client gets a clean error or a clean close (never a corrupted or mixed-up
response), the broken upstream connection is not used again, and the next request through the
proxy gets the right body on a new upstream connection. Clients here read responses by their
framing, byte-exactly (no http.client), so a complete-looking response, stray bytes or a
missing close show.
"""

import os
import socket
import sys
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "support"))
from confgate_harness import SLOW, ClosedPort, ProxyTestCase, ScriptedUpstream, wait_until  # noqa: E402

# The upstream response timeout (to the head, then the longest silence between body reads).
RESPONSE_TIMEOUT = 0.4
CONNECT_TIMEOUT = 0.3
# timeouts.total leaves room for a retry after a timed-out try.
TIMEOUTS = "    timeouts: {connect: %dms, response: %dms, total: 5s}\n" % (
    int(CONNECT_TIMEOUT * 1000), int(RESPONSE_TIMEOUT * 1000))
NO_RETRIES = "    retries: {attempts: 0}\n"

OK_HEAD = b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n"


def body_for(path):
    return ScriptedUpstream.body_for(path)


class Reply:
    """A response as one client saw it."""

    def __init__(self):
        self.status = None
        self.headers = {}
        self.body = b""
        self.raw = b""        # every byte received for this response
        self.complete = False  # the message's framing says it ended
        self.closed = False    # the proxy closed (or reset) the connection while we read
        self.timed_out = False


class Client:
    """One client connection to the proxy; reads responses by their framing, byte-exactly."""

    def __init__(self, port):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.buffer = b""
        self.closed = False

    def close(self):
        self.sock.close()

    def send(self, method, path, body=None):
        head = "%s %s HTTP/1.1\r\nHost: config.test\r\n" % (method, path)
        if body is not None:
            head += "Content-Length: %d\r\n" % len(body)
        self.sock.sendall(head.encode() + b"\r\n" + (body or b""))

    def _fill(self, deadline):
        """Reads more; False on close or when `deadline` passes."""
        if self.closed:
            return False
        self.sock.settimeout(max(0.01, deadline - time.time()))
        try:
            chunk = self.sock.recv(65536)
        except socket.timeout:
            return False
        except ConnectionResetError:
            chunk = b""
        if not chunk:
            self.closed = True
            return False
        self.buffer += chunk
        return True

    def _take(self, reply, count):
        taken, self.buffer = self.buffer[:count], self.buffer[count:]
        reply.raw += taken
        return taken

    def _read_line(self, reply, deadline):
        while b"\r\n" not in self.buffer:
            if not self._fill(deadline):
                return None
        return self._take(reply, self.buffer.index(b"\r\n") + 2)[:-2]

    def read_reply(self, method="GET", timeout=10.0):
        reply = Reply()
        deadline = time.time() + timeout
        try:
            self._read_reply(reply, method, deadline)
        finally:
            reply.closed = self.closed
            reply.timed_out = not reply.complete and not self.closed
        return reply

    def _read_reply(self, reply, method, deadline):
        while b"\r\n\r\n" not in self.buffer:
            if not self._fill(deadline):
                self._take(reply, len(self.buffer))
                return
        head = self._take(reply, self.buffer.index(b"\r\n\r\n") + 4).decode("latin-1")
        lines = head.split("\r\n")
        reply.status = int(lines[0].split(" ")[1])
        for line in lines[1:]:
            if line:
                name, _, value = line.partition(":")
                assert name.lower() not in reply.headers, "repeated header %s" % name
                reply.headers[name.lower()] = value.strip()
        if method == "HEAD" or reply.status in (204, 304):
            reply.complete = True
        elif reply.headers.get("transfer-encoding") == "chunked":
            while True:
                size_line = self._read_line(reply, deadline)
                if size_line is None:
                    return
                size = int(size_line.split(b";")[0], 16)
                if size == 0:
                    # Trailers (confgate sends none), then the empty line.
                    while True:
                        line = self._read_line(reply, deadline)
                        if line is None:
                            return
                        if line == b"":
                            reply.complete = True
                            return
                while len(self.buffer) < size + 2:
                    if not self._fill(deadline):
                        reply.body += self._take(reply, min(size, len(self.buffer)))
                        return
                reply.body += self._take(reply, size)
                assert self._take(reply, 2) == b"\r\n", reply.raw
        elif "content-length" in reply.headers:
            length = int(reply.headers["content-length"])
            while len(self.buffer) < length:
                if not self._fill(deadline):
                    break
            reply.body = self._take(reply, min(length, len(self.buffer)))
            reply.complete = len(reply.body) == length
        else:
            while self._fill(deadline):
                pass
            reply.body = self._take(reply, len(self.buffer))
            reply.complete = self.closed

    def request(self, method, path, body=None, timeout=10.0):
        self.send(method, path, body)
        return self.read_reply(method, timeout)

    def stray_bytes(self, wait=0.2):
        """Bytes the proxy sends with no request outstanding (there must be none)."""
        deadline = time.time() + wait
        while self._fill(deadline):
            pass
        stray, self.buffer = self.buffer, b""
        return stray

    def wait_closed(self, timeout):
        """True when the proxy closes the connection within `timeout` (sending nothing more)."""
        deadline = time.time() + timeout
        while self._fill(deadline):
            pass
        return self.closed and not self.buffer



class FullListenQueue:
    """A host that listens but never accepts, with its accept queue already full: the kernel
    drops further SYNs, so a connect neither succeeds nor fails until it times out."""

    def __init__(self):
        self.listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(0)
        self.address = "127.0.0.1:%d" % self.listener.getsockname()[1]
        self.fillers = []
        for _ in range(8):
            filler = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            self.fillers.append(filler)
            filler.settimeout(0.3)
            try:
                filler.connect(self.listener.getsockname())
            except socket.timeout:
                return  # the queue is full: this SYN was dropped
        raise RuntimeError("could not fill the listen queue")

    def close(self):
        for filler in self.fillers:
            filler.close()
        self.listener.close()


# Scripts for one upstream connection (see ScriptedConnection in the harness).
def serve_one_then(misbehave):
    """Answers one request correctly (the connection goes to the pool), then misbehaves on
    the next request that reuses it."""
    def script(connection):
        if connection.serve(count=1):
            misbehave(connection)
    return script


def reset_mid_body(connection):
    if connection.read_request() is not None:
        connection.send(OK_HEAD % 100 + b"x" * 40)
        time.sleep(0.3)  # let the proxy forward the head and the first bytes
        connection.reset()


def reset_before_answer(connection):
    if connection.read_request() is not None:
        connection.reset()


def half_close_without_answer(connection):
    if connection.read_request() is not None:
        connection.half_close()
        connection.wait_for_peer_close()


def truncated_chunked(connection):
    if connection.read_request() is not None:
        connection.send(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n100\r\n" +
                        b"y" * 10)
        time.sleep(0.2)
        connection.close()


def garbage(connection):
    if connection.read_request() is not None:
        connection.send(b"NOT HTTP AT ALL\r\n\r\n")
        connection.wait_for_peer_close()


def extra_bytes_in_the_same_write(connection):
    if connection.read_request() is not None:
        connection.send(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
                        b"HTTP/1.1 200 OK\r\nContent-Length: 8\r\n\r\ninjected")
        connection.wait_for_peer_close()


def extra_bytes_later(connection):
    if connection.read_request() is not None:
        connection.send(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
        time.sleep(0.1)  # the connection sits idle in the pool by now
        connection.send(b"HTTP/1.1 200 OK\r\nContent-Length: 8\r\n\r\ninjected")
        connection.wait_for_peer_close()


def stall_mid_body(connection):
    if connection.read_request() is not None:
        connection.send(OK_HEAD % 100 + b"z" * 50)
        connection.wait_for_peer_close(timeout=30)


def never_answer(connection):
    if connection.read_request() is not None:
        connection.wait_for_peer_close(timeout=30)


def answer_then_half_close(connection):
    request = connection.read_request()
    if request is not None:
        connection.respond_ok(request[1])
        connection.half_close()
        connection.wait_for_peer_close()


def answer_with_connection_close_then_linger(connection):
    """An upstream that says `Connection: close` but leaves closing to the peer (lingering
    close): any request sent on after that answer is read and ignored, then it closes."""
    request = connection.read_request()
    if request is not None:
        body = body_for(request[1])
        connection.send(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s"
                        % (len(body), body))
        connection.wait_for_peer_close(timeout=1.0)


class UpstreamFaultTest(ProxyTestCase, unittest.TestCase):
    def start(self, *scripts, extra="", hosts_before=()):
        """One scripted upstream behind a one-worker proxy (one worker: one connection pool, so
        "a new upstream connection" is exact). `hosts_before` are listed first."""
        upstream = self.start_scripted_upstream(*scripts)
        proxy = self.start_proxy(list(hosts_before) + [upstream], workers=1,
                                 upstream_extra=TIMEOUTS + extra)
        return upstream, proxy

    def closed_port(self):
        closed = ClosedPort()
        self.addCleanup(closed.close)
        return closed

    def client(self, proxy):
        client = Client(proxy.port)
        self.addCleanup(client.close)
        return client

    def assert_answer(self, reply, path, connection=None):
        """A complete, correct answer for `path` (from upstream connection `connection`)."""
        self.assertTrue(reply.complete, reply.raw)
        self.assertEqual((reply.status, reply.body), (200, body_for(path)), reply.raw)
        if connection is not None:
            self.assertEqual(reply.headers.get("x-upstream-connection"), str(connection), reply.raw)

    def assert_error(self, reply, status):
        self.assertTrue(reply.complete, reply.raw)
        self.assertEqual(reply.status, status, reply.raw)
        self.assertEqual(reply.headers.get("cache-control"), "no-store", reply.raw)
        self.assertNotIn("connection", reply.headers, "the client connection stays usable")

    def assert_cut(self, reply, sent_body):
        """A response that broke after it started: the client sees a message that is visibly
        unfinished (never a complete-looking one), only bytes the upstream sent, then a close."""
        self.assertFalse(reply.timed_out, "the client was left hanging: %r" % reply.raw)
        self.assertTrue(reply.closed, reply.raw)
        self.assertFalse(reply.complete, reply.raw)
        if reply.status is not None:
            self.assertEqual(reply.status, 200, reply.raw)
            self.assertTrue(sent_body.startswith(reply.body), reply.raw)

    def assert_next_request_works(self, proxy, upstream, bad, path="/next"):
        """A request on a fresh client connection gets the right body, on an upstream
        connection opened after the bad one (never on the bad one)."""
        reply = self.client(proxy).request("GET", path)
        self.assert_answer(reply, path)
        carried_by = upstream.connection_of(path)
        self.assertEqual(len(carried_by), 1, upstream.requests())
        self.assertGreater(carried_by[0], bad, upstream.requests())
        self.assertEqual(reply.headers["x-upstream-connection"], str(carried_by[0]))

    def assert_dropped_by_proxy(self, upstream, index):
        """The proxy closed upstream connection `index` itself (it is not parked in the pool)."""
        self.assertTrue(wait_until(lambda: upstream.peer_closed(index), 5 * SLOW),
                        "upstream connection %d still open: %r" % (index, upstream.requests()))

    # 1. resets
    def test_reset_mid_body_cuts_the_response_and_drops_the_connection(self):
        upstream, proxy = self.start(serve_one_then(reset_mid_body))
        self.assert_answer(self.client(proxy).request("GET", "/warm"), "/warm", connection=0)
        client = self.client(proxy)
        started = time.time()
        reply = client.request("GET", "/cut")
        self.assertLess(time.time() - started, 3 * SLOW)
        if reply.complete:
            # The reset raced ahead of the proxy's first read: no byte had reached the
            # client, so the read was retried (docs/configuration.md, Retries).
            self.assert_answer(reply, "/cut", connection=1)
        else:
            self.assertEqual(reply.headers.get("content-length"), "100", reply.raw)
            self.assert_cut(reply, b"x" * 40)
        self.assertEqual(upstream.connection_of("/warm") + upstream.connection_of("/cut")[:1],
                         [0, 0])
        self.assert_next_request_works(proxy, upstream, bad=0)

    def test_reset_before_answering_a_read_is_retried_on_a_new_connection(self):
        # Documented: a reset before a complete response head is retried for reads; on a
        # pooled connection it is resent once on a fresh connection.
        upstream, proxy = self.start(reset_before_answer, serve_one_then(reset_before_answer))
        client = self.client(proxy)
        self.assert_answer(client.request("GET", "/fresh"), "/fresh", connection=1)
        self.assertEqual(upstream.connection_of("/fresh"), [0, 1])
        # Connection 1 is pooled now and resets the next request it carries.
        self.assert_answer(client.request("GET", "/pooled"), "/pooled", connection=2)
        self.assertEqual(upstream.connection_of("/pooled"), [1, 2])
        self.assertEqual(client.stray_bytes(), b"")
        self.assert_next_request_works(proxy, upstream, bad=1)
        self.assertEqual(upstream.accepted(), 3)

    def test_reset_before_answering_a_write_gives_502_and_no_replay(self):
        # Documented: writes are retried only when the request never left (connect failure).
        upstream, proxy = self.start(reset_before_answer)
        client = self.client(proxy)
        self.assert_error(client.request("PUT", "/v1/kv/w", body=b"value"), 502)
        self.assertEqual(upstream.connection_of("/v1/kv/w"), [0])
        self.assert_answer(client.request("GET", "/same-client"), "/same-client", connection=1)
        self.assert_next_request_works(proxy, upstream, bad=0)

    # 2. half-closes
    def test_half_close_without_an_answer(self):
        upstream, proxy = self.start(half_close_without_answer, half_close_without_answer)
        client = self.client(proxy)
        # A write is not replayed: 502.
        self.assert_error(client.request("PUT", "/v1/kv/w", body=b"value"), 502)
        self.assertEqual(upstream.connection_of("/v1/kv/w"), [0])
        self.assert_dropped_by_proxy(upstream, 0)
        # A read is retried (the upstream closed before a response head) on a new connection.
        self.assert_answer(client.request("GET", "/r"), "/r", connection=2)
        self.assertEqual(upstream.connection_of("/r"), [1, 2])
        self.assert_dropped_by_proxy(upstream, 1)
        self.assert_next_request_works(proxy, upstream, bad=1)

    def test_half_close_after_a_complete_response(self):
        upstream, proxy = self.start(answer_then_half_close)
        client = self.client(proxy)
        self.assert_answer(client.request("GET", "/a"), "/a", connection=0)
        self.assert_dropped_by_proxy(upstream, 0)
        self.assert_answer(client.request("GET", "/b"), "/b", connection=1)
        self.assertEqual(upstream.connection_of("/b"), [1])
        self.assert_next_request_works(proxy, upstream, bad=0)

    def test_connection_close_from_upstream_is_honoured(self):
        # RFC 9112 9.6: after a response with `Connection: close` no further request may be
        # sent on that connection -- not even when the upstream is slow to actually close.
        upstream, proxy = self.start(answer_with_connection_close_then_linger,
                                     answer_with_connection_close_then_linger)
        client = self.client(proxy)
        reply = client.request("GET", "/a")
        self.assert_answer(reply, "/a")
        self.assertNotIn("connection", reply.headers, "hop-by-hop: not passed on")
        # A write right after must go on a new connection, not on the closing one.
        self.assert_answer(client.request("PUT", "/v1/kv/w", body=b"value"), "/v1/kv/w")
        self.assertEqual(upstream.connection_of("/v1/kv/w"), [1])
        self.assertEqual(upstream.connection_of("/a"), [0])

    # 3. truncated chunked body
    def test_truncated_chunked_body_is_never_completed(self):
        upstream, proxy = self.start(serve_one_then(truncated_chunked))
        self.assert_answer(self.client(proxy).request("GET", "/warm"), "/warm", connection=0)
        client = self.client(proxy)
        started = time.time()
        reply = client.request("GET", "/chunked")
        self.assertLess(time.time() - started, 3 * SLOW)
        self.assertEqual(reply.status, 200, reply.raw)
        self.assertEqual(reply.headers.get("transfer-encoding"), "chunked", reply.raw)
        self.assert_cut(reply, b"y" * 10)
        self.assertNotIn(b"\r\n0\r\n\r\n", reply.raw, "the client must not see a last chunk")
        self.assert_next_request_works(proxy, upstream, bad=0)

    # 4. garbage
    def test_garbage_response_gets_502_and_the_connection_is_dropped(self):
        upstream, proxy = self.start(serve_one_then(garbage))
        client = self.client(proxy)
        self.assert_answer(client.request("GET", "/warm"), "/warm", connection=0)
        self.assert_error(client.request("GET", "/garbage"), 502)
        self.assertEqual(upstream.connection_of("/garbage"), [0])
        self.assert_dropped_by_proxy(upstream, 0)
        self.assert_answer(client.request("GET", "/same-client"), "/same-client", connection=1)
        self.assertEqual(client.stray_bytes(), b"")
        self.assert_next_request_works(proxy, upstream, bad=0)

    # 5. more bytes than Content-Length
    def test_bytes_beyond_content_length_never_reach_a_client(self):
        upstream, proxy = self.start(extra_bytes_in_the_same_write, extra_bytes_later)
        client = self.client(proxy)
        for path, connection in (("/first", 0), ("/second", 1)):
            reply = client.request("GET", path)
            self.assertTrue(reply.complete, reply.raw)
            self.assertEqual((reply.status, reply.body), (200, b"ok"), reply.raw)
            self.assertEqual(client.stray_bytes(), b"")
            self.assert_dropped_by_proxy(upstream, connection)
        for path in ("/third", "/fourth"):
            reply = client.request("GET", path)
            self.assert_answer(reply, path, connection=2)
            self.assertNotIn(b"injected", reply.raw)
        self.assertEqual(client.stray_bytes(), b"")
        self.assertEqual([index for index, _, _ in upstream.requests()], [0, 1, 2, 2])

    # 6. stall in the middle of a body
    def test_stall_mid_body_is_cut_after_the_response_timeout(self):
        upstream, proxy = self.start(serve_one_then(stall_mid_body))
        self.assert_answer(self.client(proxy).request("GET", "/warm"), "/warm", connection=0)
        client = self.client(proxy)
        started = time.time()
        reply = client.request("GET", "/stall", timeout=10)
        elapsed = time.time() - started
        self.assert_cut(reply, b"z" * 50)
        self.assertGreaterEqual(elapsed, RESPONSE_TIMEOUT * 0.9)
        self.assertLess(elapsed, RESPONSE_TIMEOUT + 2 * SLOW, "cut long after the timeout")
        self.assert_dropped_by_proxy(upstream, 0)
        self.assert_next_request_works(proxy, upstream, bad=0)

    # 7. accepts and reads, never answers
    def test_silent_upstream_gets_504_within_the_response_timeout(self):
        upstream, proxy = self.start(serve_one_then(never_answer), extra=NO_RETRIES)
        client = self.client(proxy)
        self.assert_answer(client.request("GET", "/warm"), "/warm", connection=0)
        started = time.time()
        reply = client.request("GET", "/silent")
        elapsed = time.time() - started
        self.assert_error(reply, 504)
        self.assertGreaterEqual(elapsed, RESPONSE_TIMEOUT * 0.9)
        self.assertLess(elapsed, RESPONSE_TIMEOUT + 2 * SLOW)
        self.assert_dropped_by_proxy(upstream, 0)
        self.assert_answer(client.request("GET", "/same-client"), "/same-client", connection=1)
        self.assert_next_request_works(proxy, upstream, bad=0)

    def test_silent_upstream_read_is_retried_after_the_response_timeout(self):
        # Documented: `timeout` (no head within timeouts.response) is retried for reads.
        upstream, proxy = self.start(never_answer)
        client = self.client(proxy)
        started = time.time()
        reply = client.request("GET", "/silent")
        elapsed = time.time() - started
        self.assert_answer(reply, "/silent", connection=1)
        self.assertGreaterEqual(elapsed, RESPONSE_TIMEOUT * 0.9)
        self.assertLess(elapsed, RESPONSE_TIMEOUT + 2 * SLOW)
        self.assertEqual(upstream.connection_of("/silent"), [0, 1])
        self.assert_dropped_by_proxy(upstream, 0)
        self.assert_next_request_works(proxy, upstream, bad=0)

    # 8. a host where nothing listens
    def test_closed_port_host_is_skipped_by_retries(self):
        # Documented: a connect failure is retried on another host for every method (the
        # request never left); round robin sends every other first try to the closed port.
        upstream, proxy = self.start(hosts_before=[self.closed_port()])
        client = self.client(proxy)
        for index in range(6):
            method = "PUT" if index % 3 == 2 else "GET"
            path = "/v1/kv/k%d" % index if method == "PUT" else "/r%d" % index
            started = time.time()
            reply = client.request(method, path, body=b"v" if method == "PUT" else None)
            self.assertLess(time.time() - started, 1.0 * SLOW)
            self.assert_answer(reply, path, connection=0)
        self.assertEqual(upstream.accepted(), 1)

    def test_host_with_a_full_listen_queue_is_skipped_after_the_connect_timeout(self):
        # A connect timeout is a connect failure (docs/design-notes.md, Timeouts): retried on
        # the other host for every method.
        full = FullListenQueue()
        self.addCleanup(full.close)
        upstream, proxy = self.start(hosts_before=[full])
        client = self.client(proxy)
        for index in range(4):
            method = "PUT" if index == 3 else "GET"
            path = "/v1/kv/k%d" % index if method == "PUT" else "/r%d" % index
            started = time.time()
            reply = client.request(method, path, body=b"v" if method == "PUT" else None)
            self.assertLess(time.time() - started, CONNECT_TIMEOUT + 2 * SLOW)
            self.assert_answer(reply, path, connection=0)
        self.assertEqual(upstream.accepted(), 1)

    def test_connect_timeout_without_retries_gets_504(self):
        # docs/design-notes.md: 504 when the TCP connect does not complete in time (as nginx).
        # Round robin sends every other request to the host that never completes a connect.
        full = FullListenQueue()
        self.addCleanup(full.close)
        upstream, proxy = self.start(hosts_before=[full], extra=NO_RETRIES)
        client = self.client(proxy)
        statuses = []
        for index in range(4):
            path = "/r%d" % index
            started = time.time()
            reply = client.request("GET", path)
            elapsed = time.time() - started
            if reply.status == 200:
                self.assert_answer(reply, path, connection=0)
            else:
                self.assert_error(reply, 504)
                self.assertIn(b"upstream connect timeout", reply.body)
                # Not before the connect timeout, and not much after it.
                self.assertGreaterEqual(elapsed, CONNECT_TIMEOUT * 0.9)
                self.assertLess(elapsed, CONNECT_TIMEOUT + 2 * SLOW)
            statuses.append(reply.status)
        self.assertEqual(sorted(statuses), [200, 200, 504, 504])
        self.assertEqual(upstream.accepted(), 1)

    def test_closed_port_host_without_retries_fails_fast(self):
        upstream, proxy = self.start(hosts_before=[self.closed_port()], extra=NO_RETRIES)
        client = self.client(proxy)
        statuses = []
        for index in range(4):
            started = time.time()
            reply = client.request("GET", "/r%d" % index)
            self.assertLess(time.time() - started, 1.0 * SLOW)
            if reply.status == 200:
                self.assert_answer(reply, "/r%d" % index)
            else:
                self.assert_error(reply, 502)
            statuses.append(reply.status)
        self.assertEqual(sorted(statuses), [200, 200, 502, 502])
        self.assertEqual(upstream.accepted(), 1)


if __name__ == "__main__":
    unittest.main()

"""Process lifecycle: graceful drain on SIGTERM, and the command line (--check, --log-level,
--version)."""

import glob
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "support"))
from confgate_harness import (CONFGATE_BIN, SLOW, SOURCE_DIR, Proxy,  # noqa: E402
                              ProxyTestCase, connection_refused, raw_exchange, wait_until,
                              write_confgate_config)


class DrainTest(ProxyTestCase, unittest.TestCase):
    def test_sigterm_lets_in_flight_requests_finish(self):
        replicas = self.start_replicas(1)
        proxy = self.start_proxy(replicas, limits={"drain_timeout": "10s"})
        replicas[0].fault("delay", delay_ms=1500)
        result = {}

        def slow_request():
            result["reply"] = self.request(proxy, "GET", "/health")

        client = threading.Thread(target=slow_request)
        client.start()
        # The replica counts a request as it arrives: from then on it is in flight.
        self.assertTrue(wait_until(lambda: replicas[0].stats()["requests"] == 1, 5 * SLOW))
        started = time.time()
        proxy.process.send_signal(15)
        # Each worker closes its listener once it runs the drain; the request still waits.
        self.assertTrue(wait_until(lambda: connection_refused(proxy.port), 1.0 * SLOW),
                        "still accepting connections after SIGTERM")
        client.join(5)
        self.assertEqual(result["reply"][0], 200)
        self.assertEqual(result["reply"][2], b"ok\n")
        self.assertEqual(proxy.process.wait(timeout=10), 0)
        self.assertLess(time.time() - started, 5)
        self.assertTrue(any('"draining"' in line for line in proxy.stderr_lines()))
        self.assertEqual(proxy.access_log(count=1)[0]["status"], 200)

    def test_drain_timeout_bounds_the_wait(self):
        replicas = self.start_replicas(1)
        proxy = self.start_proxy(replicas, limits={"drain_timeout": "500ms"})
        replicas[0].fault("hang")
        with socket.create_connection(("127.0.0.1", proxy.port), timeout=5) as sock:
            sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
            # The replica counts a request as it arrives (and hangs): it is in flight now.
            self.assertTrue(wait_until(lambda: replicas[0].stats()["requests"] == 1, 5 * SLOW))
            started = time.time()
            self.assertEqual(proxy.terminate(timeout=10), 0)
            self.assertLess(time.time() - started, 3 * SLOW)

    def test_idle_keep_alive_clients_do_not_delay_exit(self):
        replicas = self.start_replicas(1)
        proxy = self.start_proxy(replicas, limits={"drain_timeout": "10s"})
        import http.client
        connection = http.client.HTTPConnection("127.0.0.1", proxy.port, timeout=5)
        connection.request("GET", "/health")
        connection.getresponse().read()
        started = time.time()
        self.assertEqual(proxy.terminate(timeout=10), 0)
        self.assertLess(time.time() - started, 2 * SLOW)  # far below the 10 s drain timeout
        connection.close()


class LogLevelTest(ProxyTestCase, unittest.TestCase):
    BAD_REQUEST = b"GET / HTTP/1.1\r\nHost: a\r\nno colon here\r\n\r\n"

    def entries(self, lines):
        return [json.loads(line) for line in lines if line.startswith("{")]

    def bad_request_lines(self, args):
        """The process-log entries of a proxy run with `args` that saw one malformed request
        and then a SIGTERM (its "draining" line, at info, marks that the earlier ones are in)."""
        replicas = self.start_replicas(1)
        directory = tempfile.mkdtemp(prefix="confgate-log-")
        proxy = Proxy(write_confgate_config(directory, replicas, workers=1), args=args)
        self.addCleanup(proxy.kill)
        self.assertTrue(raw_exchange(proxy.port, self.BAD_REQUEST).startswith(b"HTTP/1.1 400"))
        proxy.process.terminate()
        proxy.process.wait(timeout=20)
        self.assertTrue(wait_until(lambda: any('"draining"' in line
                                               for line in proxy.stderr_lines()), 5))
        return [entry for entry in self.entries(proxy.stderr_lines())
                if entry["msg"] == "bad request"]

    def test_debug_level_logs_what_info_leaves_out(self):
        logged = self.bad_request_lines(["--log-level", "debug"])
        self.assertEqual(len(logged), 1)
        self.assertEqual((logged[0]["level"], logged[0]["status"]), ("debug", "400"))
        self.assertEqual(self.bad_request_lines([]), [])  # info, the default

    @staticmethod
    def loopback_listener_port(pid):
        """The port of a 127.0.0.1 TCP listener that process `pid` holds, or None (/proc)."""
        inodes = set()
        for fd in os.listdir("/proc/%d/fd" % pid):
            try:
                target = os.readlink("/proc/%d/fd/%s" % (pid, fd))
            except OSError:
                continue
            if target.startswith("socket:["):
                inodes.add(target[len("socket:["):-1])
        with open("/proc/%d/net/tcp" % pid) as table:
            next(table)
            for line in table:
                fields = line.split()
                local, state, inode = fields[1], fields[3], fields[9]
                if state == "0A" and inode in inodes and local.startswith("0100007F:"):
                    return int(local.split(":")[1], 16)
        return None

    def test_error_level_drops_warnings_and_info(self):
        # Nothing at warn or above says when the proxy is up, so the test finds its listener
        # in /proc and waits until it answers. An admin listener off loopback is warned about
        # at start-up (AdminExposureTest).
        replicas = self.start_replicas(1)
        directory = tempfile.mkdtemp(prefix="confgate-log-")
        path = write_confgate_config(directory, replicas, workers=1)
        with open(path) as handle:
            text = handle.read()
        with open(path, "w") as handle:
            handle.write(text.replace("admin:\n  address: 127.0.0.1:0",
                                      "admin:\n  address: 0.0.0.0:0"))
        runs = {}
        for level in ("warn", "error"):
            process = subprocess.Popen([CONFGATE_BIN, "-c", path, "--log-level=" + level],
                                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                       text=True)
            self.addCleanup(process.kill)
            found = {}

            def listening():
                found["port"] = self.loopback_listener_port(process.pid)
                return found["port"] is not None

            self.assertTrue(wait_until(listening, 10 * SLOW))
            answer = raw_exchange(found["port"],
                                  b"GET /v1/kv/a HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
                                  read_timeout=5 * SLOW)
            self.assertTrue(answer.startswith(b"HTTP/1.1 "), answer)
            process.terminate()
            runs[level] = self.entries(process.communicate(timeout=20)[1].splitlines())
            self.assertEqual(process.returncode, 0, runs[level])
        self.assertEqual({entry["level"] for entry in runs["warn"]}, {"warn"})
        self.assertTrue(any("admin listener is reachable" in entry["msg"]
                            for entry in runs["warn"]))
        self.assertEqual(runs["error"], [])

    def test_unknown_level_is_refused(self):
        result = subprocess.run([CONFGATE_BIN, "--log-level", "loud", "-c", "unused.yaml"],
                                capture_output=True, text=True, timeout=30)
        self.assertEqual(result.returncode, 2)
        self.assertIn('unknown log level "loud"', result.stderr)


class CommandLineTest(unittest.TestCase):
    def run_confgate(self, *args):
        return subprocess.run([CONFGATE_BIN, *args], capture_output=True, text=True, timeout=30)

    def test_check_accepts_every_shipped_config(self):
        files = sorted(glob.glob(os.path.join(SOURCE_DIR, "conf", "*.yaml")))
        self.assertTrue(files)
        for path in files:
            with self.subTest(os.path.basename(path)):
                result = self.run_confgate("--check", "-c", path)
                self.assertEqual(result.returncode, 0, result.stdout + result.stderr)
                self.assertIn("ok", result.stdout)

    def test_check_reports_every_problem_with_path_and_line(self):
        with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False) as handle:
            handle.write("""listeners:
  - address: 127.0.0.1:8080
upstreams:
  config-service:
    balancer: fastest
    servers:
      - {address: 127.0.0.1:8081}
      - {address: 10.0.0.1}
routes:
  - match: {prefix: /}
    upstream: nowhere
""")
        self.addCleanup(os.unlink, handle.name)
        result = self.run_confgate("--check", "-c", handle.name)
        self.assertEqual(result.returncode, 1)
        self.assertIn('upstreams.config-service.balancer: line 5: unknown balancer "fastest"',
                      result.stdout)
        self.assertIn('upstreams.config-service.servers[1].address: line 8: "10.0.0.1" has no port',
                      result.stdout)
        self.assertIn('routes[0].upstream: line 11: unknown upstream "nowhere"', result.stdout)

    def test_check_reads_the_admin_token_file(self):
        directory = tempfile.mkdtemp(prefix="confgate-check-")
        token_path = os.path.join(directory, "admin.token")
        config_path = os.path.join(directory, "confgate.yaml")
        with open(config_path, "w") as handle:
            handle.write("""listeners:
  - address: 127.0.0.1:0
admin: {address: 127.0.0.1:0, token_file: %s}
upstreams:
  config-service:
    servers:
      - {address: 127.0.0.1:8081}
routes:
  - match: {prefix: /}
    upstream: config-service
""" % token_path)
        missing = self.run_confgate("--check", "-c", config_path)
        self.assertEqual(missing.returncode, 1)
        self.assertIn("admin.token_file: cannot read " + token_path, missing.stdout)
        with open(token_path, "w") as handle:
            handle.write(" \n")
        empty = self.run_confgate("--check", "-c", config_path)
        self.assertEqual(empty.returncode, 1)
        self.assertIn("admin.token_file: %s is empty" % token_path, empty.stdout)
        with open(token_path, "w") as handle:
            handle.write("s3cret-token\n")
        good = self.run_confgate("--check", "-c", config_path)
        self.assertEqual(good.returncode, 0, good.stdout)
        self.assertNotIn("s3cret-token", good.stdout + good.stderr)

    def test_bad_config_stops_start_up(self):
        with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False) as handle:
            handle.write("listeners: []\n")
        self.addCleanup(os.unlink, handle.name)
        result = self.run_confgate("-c", handle.name)
        self.assertEqual(result.returncode, 1)
        self.assertIn("listeners", result.stderr)

    def test_version_and_help(self):
        version = self.run_confgate("--version")
        self.assertEqual(version.returncode, 0)
        self.assertRegex(version.stdout, r"^confgate \d+\.\d+\.\d+")
        help_text = self.run_confgate("--help")
        self.assertEqual(help_text.returncode, 0)
        self.assertIn("--check", help_text.stdout)
        self.assertEqual(self.run_confgate("--bogus").returncode, 2)


if __name__ == "__main__":
    unittest.main()

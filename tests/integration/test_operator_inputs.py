"""The operator's inputs as hostile input: the upstream file (its size, what kind of file it is,
several documents, values too long to echo), the admin token file, and reloads (large files,
storms of them)."""

import http.client
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "support"))
from confgate_harness import (CONFGATE_BIN, SLOW, ClosedPort, Proxy, ProxyTestCase,  # noqa: E402
                              admin_call, wait_until, write_confgate_config)

MAX_CONFIG_BYTES = 8 * 1024 * 1024

# The upstream: a port held without listen() for the module's life, so no other process can
# answer on it.
UPSTREAM = ClosedPort()
VALID = """listeners:
  - address: 127.0.0.1:0
admin: {address: 127.0.0.1:0%s}
workers: 1
upstreams:
  config-service:
    servers:
      - {address: UPSTREAM_ADDRESS}
routes:
  - match: {prefix: /}
    upstream: config-service
""".replace("UPSTREAM_ADDRESS", UPSTREAM.address)


class UpstreamFileTest(unittest.TestCase):
    def setUp(self):
        self.directory = tempfile.mkdtemp(prefix="confgate-input-")

    def write(self, name, text):
        path = os.path.join(self.directory, name)
        with open(path, "w") as handle:
            handle.write(text)
        return path

    def run_confgate(self, *args, stdin=subprocess.DEVNULL):
        """Runs confgate and how long it took; inputs that never end (a FIFO, /dev/zero) used
        to keep it reading until the timeout."""
        started = time.monotonic()
        result = subprocess.run([CONFGATE_BIN, *args], capture_output=True, text=True,
                                timeout=120, stdin=stdin)
        return result, time.monotonic() - started

    def fifo(self, name):
        path = os.path.join(self.directory, name)
        os.mkfifo(path)
        return path

    def test_devices_and_fifos_fail_at_once(self):
        for path in ["/dev/zero", self.fifo("upstream.yaml")]:
            with self.subTest(path):
                result, took = self.run_confgate("--check", "-c", path)
                self.assertEqual(result.returncode, 1)
                self.assertIn("not a regular file", result.stdout)
                self.assertLess(took, 5 * SLOW)
        # -c /dev/stdin with a pipe that never ends (the writer stays open).
        writer = subprocess.Popen(["sleep", "30"], stdout=subprocess.PIPE)
        self.addCleanup(writer.kill)
        result, took = self.run_confgate("--check", "-c", "/dev/stdin", stdin=writer.stdout)
        self.assertEqual(result.returncode, 1)
        self.assertIn("not a regular file", result.stdout)
        # Start-up too, not only --check.
        result, took = self.run_confgate("-c", "/dev/zero")
        self.assertEqual(result.returncode, 1)
        self.assertIn("not a regular file", result.stderr)

    def test_a_file_over_the_cap_is_an_error_naming_the_limit(self):
        text = VALID % ""
        under = self.write("under.yaml", text + "#" * (MAX_CONFIG_BYTES - len(text) - 1) + "\n")
        self.assertEqual(os.path.getsize(under), MAX_CONFIG_BYTES)
        result, _ = self.run_confgate("--check", "-c", under)
        self.assertEqual(result.returncode, 0, result.stdout)
        over = self.write("over.yaml", text + "#" * (MAX_CONFIG_BYTES - len(text)) + "\n")
        result, _ = self.run_confgate("--check", "-c", over)
        self.assertEqual(result.returncode, 1)
        self.assertIn("over.yaml is larger than the limit of 8 MiB", result.stdout)

    def test_two_documents_are_an_error_naming_the_second(self):
        path = self.write("two.yaml", VALID % "" + "---\nworkers: 4\n")
        result, _ = self.run_confgate("--check", "-c", path)
        self.assertEqual(result.returncode, 1)
        self.assertIn("line 12: a second YAML document starts here", result.stdout)

    def test_errors_quote_at_most_a_hundred_bytes_of_a_value(self):
        huge = "v" * (8 * 1024 * 1024 - 1024)
        path = self.write("long.yaml", (VALID % "").replace(
            "    servers:", "    balancer: %s\n    servers:" % huge))
        result, _ = self.run_confgate("--check", "-c", path)
        self.assertEqual(result.returncode, 1)
        self.assertLess(len(result.stdout), 1000)
        self.assertIn('balancer: line 7: unknown balancer "%s"... (%d bytes)'
                      % ("v" * 100, len(huge)), result.stdout)

    def test_a_token_file_that_never_ends_fails_at_once(self):
        for token_file in ["/dev/zero", self.fifo("admin.token")]:
            path = self.write("token.yaml", VALID % (", token_file: " + token_file))
            for args in (["--check", "-c", path], ["-c", path]):
                with self.subTest(token_file=token_file, args=args):
                    result, took = self.run_confgate(*args)
                    self.assertEqual(result.returncode, 1)
                    self.assertIn("admin.token_file: cannot read %s: not a regular file"
                                  % token_file, result.stdout + result.stderr)
                    self.assertLess(took, 5 * SLOW)


class LargeReloadTest(ProxyTestCase, unittest.TestCase):
    def test_healthz_answers_while_a_large_file_is_parsed(self):
        replicas = self.start_replicas(1)
        directory = tempfile.mkdtemp(prefix="confgate-large-")
        path = write_confgate_config(directory, replicas, workers=1)
        proxy = Proxy(path)
        self.addCleanup(proxy.kill)
        with open(path) as handle:
            text = handle.read()
        # Just under the cap: the running file plus a long list under an unknown key, which
        # yaml-cpp needs a while to parse (the reload is then rejected for the key).
        item = "  - " + "p" * 60 + "\n"
        padding = "x-padding:\n" + item * ((MAX_CONFIG_BYTES - len(text) - 64) // len(item))
        with open(path, "w") as handle:
            handle.write(text + padding)
        self.assertLess(os.path.getsize(path), MAX_CONFIG_BYTES)

        reload_result = {}

        def reload():
            started = time.monotonic()
            # Under load (a sanitizer build, a busy machine) the parse may take a while.
            caller = http.client.HTTPConnection("127.0.0.1", proxy.admin_port, timeout=120)
            caller.request("POST", "/reload", body=b"")
            response = caller.getresponse()
            reload_result["reply"] = (response.status, response.read().decode())
            reload_result["took"] = time.monotonic() - started
            caller.close()

        reloading = threading.Thread(target=reload)
        connection = http.client.HTTPConnection("127.0.0.1", proxy.admin_port, timeout=30)
        latencies = []
        reloading.start()
        while reloading.is_alive():
            started = time.monotonic()
            connection.request("GET", "/healthz")
            response = connection.getresponse()
            self.assertEqual((response.status, response.read()), (200, b"ok\n"))
            latencies.append(time.monotonic() - started)
            time.sleep(0.02)
        reloading.join()
        connection.close()
        status, body = reload_result["reply"]
        # The admin caller still gets the reload's result.
        self.assertEqual(status, 400)
        self.assertIn('unknown key "x-padding"', json.loads(body)["error"])
        took = reload_result["took"]
        if took < 0.3:
            self.skipTest("the file parsed in %.2f s: too fast to tell" % took)
        # On the main thread, the first /healthz would wait for (nearly) the whole parse.
        self.assertGreaterEqual(len(latencies), 3)
        self.assertLess(max(latencies), took / 2,
                        "healthz waited %.2f s during a %.2f s reload" % (max(latencies), took))


class ReloadStormTest(ProxyTestCase, unittest.TestCase):
    def start(self, routes=None, upstream_extra=""):
        self.replicas = self.start_replicas(2)
        self.directory = tempfile.mkdtemp(prefix="confgate-storm-")
        path = write_confgate_config(self.directory, self.replicas, workers=2, routes=routes,
                                     upstream_extra=upstream_extra)
        self.proxy = Proxy(path)
        self.addCleanup(self.proxy.kill)

    def reloads_succeeded(self):
        text = admin_call(self.proxy, "GET", "/metrics")[1]
        for line in text.splitlines():
            if line.startswith('confgate_config_reloads_total{result="success"}'):
                return int(float(line.split()[-1]))
        return 0

    def test_snapshots_are_written_while_reloads_keep_coming(self):
        snapshot = os.path.join(tempfile.mkdtemp(prefix="confgate-snap-"), "cache.snap")
        self.start(routes="""routes:
  - match: {prefix: /}
    upstream: config-service
    cache: {enabled: true, default_ttl: 60s, persist: {path: %s, interval: 1s}}
""" % snapshot)
        self.assertEqual(self.request(self.proxy, "GET", "/health")[0], 200)
        started = time.monotonic()
        written = None
        # A SIGHUP every 0.3 s used to re-arm the 1 s snapshot timer each time: never written.
        while time.monotonic() - started < 4 * SLOW:
            self.proxy.process.send_signal(signal.SIGHUP)
            if os.path.exists(snapshot):
                written = time.monotonic() - started
                break
            time.sleep(0.3)
        self.assertIsNotNone(written, "no snapshot written during 4 s of reloads")
        self.assertLess(written, 2.5 * SLOW)
        self.assertGreater(self.reloads_succeeded(), 0)

    def descriptors(self):
        return len(self.descriptor_targets())

    def descriptor_targets(self):
        targets = []
        directory = "/proc/%d/fd" % self.proxy.process.pid
        for name in os.listdir(directory):
            try:
                targets.append(os.readlink(os.path.join(directory, name)))
            except OSError:
                pass  # closed meanwhile
        return sorted(targets)

    def test_descriptors_stay_level_across_a_storm_of_reloads(self):
        self.start(upstream_extra="    health_check: {type: http, path: /health, interval: 500ms,"
                                  " timeout: 1s}\n")
        for _ in range(5):
            self.assertEqual(self.request(self.proxy, "GET", "/health")[0], 200)
        time.sleep(0.5)
        before_targets = self.descriptor_targets()
        before = len(before_targets)
        for round in range(50):
            self.proxy.process.send_signal(signal.SIGHUP)
            if round % 10 == 0:
                self.assertEqual(admin_call(self.proxy, "POST", "/reload")[0], 200)
                self.assertEqual(self.request(self.proxy, "GET", "/health")[0], 200)
            time.sleep(0.02)
        self.assertTrue(wait_until(lambda: self.reloads_succeeded() >= 6, 5 * SLOW))
        # A health check in flight holds a socket for a moment: wait for the count to settle.
        settled = wait_until(lambda: self.descriptors() <= before, 5 * SLOW)
        self.assertTrue(settled, "descriptors before 50 reloads: %s; after: %s"
                        % (before_targets, self.descriptor_targets()))


if __name__ == "__main__":
    unittest.main()

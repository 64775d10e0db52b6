"""The operator's inputs as hostile input: the upstream file (its size, what kind of file it is,
several documents, values too long to echo), the admin token file, and reloads (large files,
storms of them)."""

import http.client
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "support"))
from confgate_harness import (CONFGATE_BIN, Proxy, ProxyTestCase, admin_call,  # noqa: E402
                              write_confgate_config)

MAX_CONFIG_BYTES = 8 * 1024 * 1024

VALID = """listeners:
  - address: 127.0.0.1:0
admin: {address: 127.0.0.1:0%s}
workers: 1
upstreams:
  config-service:
    servers:
      - {address: 127.0.0.1:8081}
routes:
  - match: {prefix: /}
    upstream: config-service
"""


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
                self.assertLess(took, 5)
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
                    self.assertLess(took, 5)


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


if __name__ == "__main__":
    unittest.main()

"""Start-up without DNS (a Kubernetes sidecar may start before names resolve), and --check
agreeing with start-up: it runs the same validate-and-build steps, so it never says ok to a file
that start-up refuses."""

import json
import os
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "support"))
from confgate_harness import CONFGATE_BIN, Proxy, ProxyTestCase, admin_call  # noqa: E402

CONFIG = """listeners:
  - address: 127.0.0.1:0
admin: {address: 127.0.0.1:0}
workers: 1
%supstreams:
  config-service:
    dns_refresh: 200ms
    servers:
      - {%s: no-such-host.invalid:8080}
routes:
  - match: {prefix: /}
    upstream: config-service
"""


def write(text):
    directory = tempfile.mkdtemp(prefix="confgate-dns-startup-")
    path = os.path.join(directory, "confgate.yaml")
    with open(path, "w") as handle:
        handle.write(text)
    return directory, path


def run(*args):
    return subprocess.run([CONFGATE_BIN, *args], capture_output=True, text=True, timeout=30)


class DnsStartupTest(ProxyTestCase, unittest.TestCase):
    def test_unresolvable_names_start_with_no_host(self):
        for form in ("address", "dns"):
            with self.subTest(form=form):
                _, path = write(CONFIG % ("", form))
                checked = run("--check", "-c", path)
                self.assertEqual(checked.returncode, 0, checked.stdout + checked.stderr)
                self.assertIn(": ok", checked.stdout)
                proxy = Proxy(path)
                self.addCleanup(proxy.kill)
                self.assertEqual(admin_call(proxy, "GET", "/readyz")[0], 200)
                status = json.loads(admin_call(proxy, "GET", "/status")[1])
                upstream = status["upstreams"][0]
                self.assertEqual(upstream["hosts"], [])
                self.assertEqual(upstream["mode"], "read_only")
                code, headers, body = self.request(proxy, "GET", "/v1/kv/a")
                self.assertEqual(code, 503)
                self.assertEqual(headers.get("X-Confgate-Mode"), "read-only")
                self.assertIn("error", json.loads(body))
                logs = "\n".join(proxy.stderr_lines())
                self.assertIn("name does not resolve yet", logs)
                self.assertEqual(proxy.terminate(), 0)

    def test_check_fails_what_start_up_refuses(self):
        # The access log is opened at start-up, after the file validated: --check must see it.
        directory, _ = write("")
        missing = os.path.join(directory, "no-such-dir", "access.log")
        _, path = write(CONFIG.replace("no-such-host.invalid", "127.0.0.1") % (
            "access_log: {enabled: true, path: %s}\n" % missing, "address"))
        checked = run("--check", "-c", path)
        started = run("-c", path)
        self.assertEqual(started.returncode, 1, started.stderr)
        self.assertEqual(checked.returncode, 1, checked.stdout)
        self.assertIn("access_log.path", checked.stdout)
        self.assertFalse(os.path.exists(missing))


if __name__ == "__main__":
    unittest.main()

"""--check and start-up run one config pipeline (Load -> Validate -> Build; only binding is left
out of --check), so --check cannot say ok to a file start-up refuses."""

import os
import shutil
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "support"))
from confgate_harness import CONFGATE_BIN, ClosedPort  # noqa: E402

UPSTREAM = ClosedPort()
CONFIG = """listeners:
  - address: 127.0.0.1:0
admin: {address: 127.0.0.1:0}
workers: 1
access_log: {path: ACCESS_LOG}
upstreams:
  config-service:
    servers:
      - {address: UPSTREAM_ADDRESS}
routes:
  - match: {prefix: /}
    upstream: config-service
""".replace("UPSTREAM_ADDRESS", UPSTREAM.address)


class CheckAgreesWithStartUpTest(unittest.TestCase):
    def setUp(self):
        self.directory = tempfile.mkdtemp(prefix="confgate-pipeline-")
        self.addCleanup(shutil.rmtree, self.directory, True)

    def run_confgate(self, *args):
        return subprocess.run([CONFGATE_BIN, *args], capture_output=True, text=True, timeout=60,
                              stdin=subprocess.DEVNULL)

    def test_an_access_log_path_that_is_a_directory(self):
        # Parses and validates; only opening it fails. --check used to say ok.
        path = os.path.join(self.directory, "upstream.yaml")
        with open(path, "w") as f:
            f.write(CONFIG.replace("ACCESS_LOG", self.directory))
        message = "access_log.path: cannot open %s: Is a directory" % self.directory
        check = self.run_confgate("--check", "-c", path)
        self.assertEqual(check.returncode, 1, check.stdout)
        self.assertIn(message, check.stdout)
        self.assertIn("1 problem", check.stdout)
        start = self.run_confgate("-c", path)
        self.assertEqual(start.returncode, 1)
        self.assertIn(message, start.stderr)

    def test_a_writable_access_log_passes_both(self):
        log = os.path.join(self.directory, "access.log")
        path = os.path.join(self.directory, "upstream.yaml")
        with open(path, "w") as f:
            f.write(CONFIG.replace("ACCESS_LOG", log))
        check = self.run_confgate("--check", "-c", path)
        self.assertEqual(check.returncode, 0, check.stdout)
        self.assertEqual(check.stdout, "%s: ok\n" % path)
        self.assertFalse(os.path.exists(log))  # --check opens nothing for good


if __name__ == "__main__":
    unittest.main()

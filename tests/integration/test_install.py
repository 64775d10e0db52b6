"""`cmake --install`: the binary, the systemd unit (hardened, and clean for systemd-analyze), the
man pages confgate(8) and confgate.yaml(5), example upstream files, the JSON Schema and the
licence land under the prefix, and work from there."""

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "support"))
from confgate_harness import CONFGATE_BIN, SOURCE_DIR  # noqa: E402


def build_dir():
    """The CMake build tree the tests run from: the one holding CONFGATE_BIN."""
    directory = os.path.dirname(os.path.abspath(CONFGATE_BIN))
    while not os.path.exists(os.path.join(directory, "CMakeCache.txt")):
        parent = os.path.dirname(directory)
        if parent == directory:
            raise RuntimeError("no CMakeCache.txt above " + CONFGATE_BIN)
        directory = parent
    return directory


def unit_settings(text):
    """The unit's `Key=value` lines (a key given twice keeps both values)."""
    settings = {}
    for line in text.splitlines():
        if line and not line.startswith(("#", "[")) and "=" in line:
            key, value = line.split("=", 1)
            settings.setdefault(key, []).append(value)
    return settings


class InstallTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.prefix = tempfile.mkdtemp(prefix="confgate-install-")
        result = subprocess.run(["cmake", "--install", build_dir(), "--prefix", cls.prefix],
                                capture_output=True, text=True, timeout=120)
        if result.returncode != 0:
            raise RuntimeError(result.stdout + result.stderr)
        cls.binary = os.path.join(cls.prefix, "bin", "confgate")
        cls.unit = os.path.join(cls.prefix, "lib", "systemd", "system", "confgate.service")
        cls.man8 = os.path.join(cls.prefix, "share", "man", "man8", "confgate.8")
        cls.man5 = os.path.join(cls.prefix, "share", "man", "man5", "confgate.yaml.5")
        cls.docs = os.path.join(cls.prefix, "share", "doc", "confgate")

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.prefix)

    def read(self, path):
        with open(path) as handle:
            return handle.read()

    def test_binary_and_examples(self):
        self.assertTrue(os.access(self.binary, os.X_OK))
        version = subprocess.run([self.binary, "--version"], capture_output=True, text=True,
                                 timeout=10)
        self.assertEqual(version.returncode, 0)
        self.assertTrue(version.stdout.startswith("confgate "), version.stdout)
        # The installed binary accepts the installed example (what the unit's ExecStartPre does).
        example = os.path.join(self.docs, "examples", "confgate.yaml")
        check = subprocess.run([self.binary, "--check", "-c", example], capture_output=True,
                               text=True, timeout=30)
        self.assertEqual(check.returncode, 0, check.stdout)
        self.assertTrue(os.path.exists(os.path.join(self.docs, "examples", "demo.yaml")))
        schema = os.path.join(self.prefix, "share", "confgate", "confgate.schema.json")
        self.assertEqual(json.loads(self.read(schema))["type"], "object")
        for part in (("prometheus", "alerts.yaml"), ("grafana", "confgate-dashboard.json")):
            self.assertTrue(os.path.exists(os.path.join(self.prefix, "share", "confgate", *part)))

    def test_licence_is_the_full_apache_2_text(self):
        for path in (os.path.join(SOURCE_DIR, "LICENSE"), os.path.join(self.docs, "LICENSE")):
            text = self.read(path)
            self.assertIn("Apache License", text)
            self.assertIn("Version 2.0, January 2004", text)
            self.assertIn("TERMS AND CONDITIONS FOR USE, REPRODUCTION, AND DISTRIBUTION", text)
            self.assertIn("END OF TERMS AND CONDITIONS", text)
            self.assertGreater(len(text), 10000)

    def test_systemd_unit(self):
        settings = unit_settings(self.read(self.unit))
        self.assertEqual(settings["Type"], ["exec"])  # confgate does not call sd_notify()
        self.assertEqual(settings["ExecStart"], [self.binary + " -c /etc/confgate/confgate.yaml"])
        self.assertEqual(settings["ExecStartPre"],
                         [self.binary + " --check -c /etc/confgate/confgate.yaml"])
        self.assertEqual(settings["ExecReload"], ["/bin/kill -HUP $MAINPID"])
        for key, value in (("DynamicUser", "yes"), ("ProtectSystem", "strict"),
                           ("ProtectHome", "yes"), ("PrivateTmp", "yes"),
                           ("NoNewPrivileges", "yes"), ("PrivateDevices", "yes"),
                           ("StateDirectory", "confgate"),
                           ("CapabilityBoundingSet", "CAP_NET_BIND_SERVICE"),
                           ("AmbientCapabilities", "CAP_NET_BIND_SERVICE")):
            self.assertEqual(settings.get(key), [value], key)
        self.assertEqual(settings["RestrictAddressFamilies"][0].split(),
                         ["AF_INET", "AF_INET6", "AF_UNIX"])
        self.assertIn("@system-service", settings["SystemCallFilter"])
        # Longer than the default drain (limits.drain_timeout: 15s), so a drain is not cut.
        self.assertEqual(settings["TimeoutStopSec"], ["30s"])
        analyze = shutil.which("systemd-analyze")
        if analyze is None:
            self.skipTest("systemd-analyze is not installed")
        # verify looks the Documentation= man pages up: the installed ones.
        environment = dict(os.environ, MANPATH=os.path.join(self.prefix, "share", "man"))
        result = subprocess.run([analyze, "verify", self.unit], capture_output=True, text=True,
                                timeout=60, env=environment)
        self.assertEqual(result.returncode, 0, result.stdout + result.stderr)
        # A misspelt or unknown setting is only a warning: none may be printed.
        self.assertEqual((result.stdout + result.stderr).strip(), "")

    def test_man_pages(self):
        page8 = self.read(self.man8).replace("\\-", "-")
        page5 = self.read(self.man5).replace("\\-", "-")
        self.assertIn(".TH CONFGATE 8", page8)
        self.assertIn(".TH CONFGATE.YAML 5", page5)
        # Every flag of the usage text is in confgate(8).
        usage = subprocess.run([CONFGATE_BIN, "--help"], capture_output=True, text=True,
                               timeout=10).stdout
        flags = set(re.findall(r"(?<![\w-])(--?[a-z][a-z-]*)", usage))
        self.assertIn("--check", flags)
        for flag in flags:
            self.assertIn(flag, page8)
        for signal_name in ("SIGHUP", "SIGTERM", "SIGINT"):
            self.assertIn(signal_name, page8)
        # Every key the JSON Schema knows is in confgate.yaml(5).
        with open(os.path.join(SOURCE_DIR, "docs", "confgate.schema.json")) as handle:
            schema = json.load(handle)
        keys = set()

        def collect(node):
            if isinstance(node, dict):
                for name, child in node.get("properties", {}).items():
                    keys.add(name)
                    collect(child)
                for child in node.values():
                    collect(child)
            elif isinstance(node, list):
                for child in node:
                    collect(child)
        collect(schema)
        self.assertGreater(len(keys), 60)
        for key in sorted(keys):
            pattern = r"\.B[IR]? %s\b|\\fB%s\\fR" % (re.escape(key), re.escape(key))
            self.assertTrue(re.search(pattern, page5), key)
        groff = shutil.which("groff")
        if groff:
            for page in (self.man8, self.man5):
                result = subprocess.run([groff, "-man", "-ww", "-z", page], capture_output=True,
                                        text=True, timeout=30)
                self.assertEqual((result.returncode, result.stderr), (0, ""), page)
        man = shutil.which("man")
        if man is None:
            self.skipTest("man is not installed")
        for page, title in ((self.man8, "CONFGATE(8)"), (self.man5, "CONFGATE.YAML(5)")):
            result = subprocess.run([man, "-l", page], capture_output=True, text=True,
                                    timeout=30, env=dict(os.environ, MANWIDTH="80"))
            self.assertEqual(result.returncode, 0, result.stderr)
            self.assertIn(title, result.stdout)
            self.assertIn("SEE ALSO", result.stdout)


if __name__ == "__main__":
    unittest.main()

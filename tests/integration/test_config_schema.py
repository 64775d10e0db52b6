"""docs/confgate.schema.json, the JSON Schema of the upstream file that editors use: every example
config in the repository passes it, the bad files it can tell are refused, and on the formats of
values (durations, sizes, percentages, addresses) it agrees with `confgate --check`."""

import glob
import json
import os
import re
import subprocess
import sys
import tempfile
import unittest

import jsonschema
import yaml

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "support"))
from confgate_harness import CONFGATE_BIN, SOURCE_DIR  # noqa: E402

SCHEMA_PATH = os.path.join(SOURCE_DIR, "docs", "confgate.schema.json")

# Bad files in tests/testdata/config that only confgate itself can tell: a route naming an
# upstream that does not exist, a repeated mapping key (a YAML parser keeps the last), and a file
# that is not YAML at all.
NOT_A_SCHEMA_MATTER = {"bad_unknown_upstream.yaml", "bad_duplicate_upstream.yaml",
                       "bad_yaml_syntax.yaml"}


class Yaml12Loader(yaml.SafeLoader):
    """YAML as yaml-cpp and editors' YAML 1.2 read it: `on`, `yes`, `off` are strings, not the
    booleans of PyYAML's YAML 1.1 (`retries: {on: [...]}` would become a key True)."""


Yaml12Loader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:bool"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()}
Yaml12Loader.add_implicit_resolver("tag:yaml.org,2002:bool", re.compile(r"^(?:true|false)$"),
                                   list("tf"))


def load_yaml(text):
    return yaml.load(text, Loader=Yaml12Loader)


def is_upstream_file(value):
    return isinstance(value, dict) and "listeners" in value and "routes" in value


def configs_in(value, where):
    """Upstream files inside a YAML value: the value itself, a ConfigMap's data, Helm values."""
    if is_upstream_file(value):
        yield where, value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from configs_in(item, "%s.%s" % (where, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from configs_in(item, "%s[%d]" % (where, index))
    elif isinstance(value, str) and "listeners:" in value and "routes:" in value:
        try:
            parsed = load_yaml(value)
        except yaml.YAMLError:
            return
        yield from configs_in(parsed, where)


def example_configs():
    """Every upstream file in conf/, examples/, docker/ and deploy/ (Helm templates excluded:
    they are Go templates, their values file is checked instead)."""
    found = []
    for folder in ("conf", "examples", "docker", "deploy"):
        for path in sorted(glob.glob(os.path.join(SOURCE_DIR, folder, "**", "*.y*ml"),
                                     recursive=True)):
            relative = os.path.relpath(path, SOURCE_DIR)
            if "/templates/" in relative:
                continue
            with open(path) as handle:
                for index, document in enumerate(yaml.load_all(handle, Loader=Yaml12Loader)):
                    found.extend(configs_in(document, "%s#%d" % (relative, index)))
    return found


class SchemaTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        with open(SCHEMA_PATH) as handle:
            cls.schema = json.load(handle)
        jsonschema.Draft7Validator.check_schema(cls.schema)
        cls.validator = jsonschema.Draft7Validator(cls.schema)

    def errors(self, config):
        return [error.message for error in self.validator.iter_errors(config)]

    def test_every_example_config_passes(self):
        examples = example_configs()
        names = {where.split("#")[0] for where, _ in examples}
        # The examples this test is about: a file the walk no longer finds is a test bug.
        for expected in ("conf/confgate.yaml", "conf/demo.yaml", "docker/compose-confgate.yaml",
                         "docker/k8s/edge.yaml", "docker/k8s/sidecar.yaml",
                         "deploy/helm/confgate/values.yaml"):
            self.assertIn(expected, names)
        for where, config in examples:
            self.assertEqual(self.errors(config), [], where)

    def test_bad_files_are_refused(self):
        paths = sorted(glob.glob(os.path.join(SOURCE_DIR, "tests", "testdata", "config",
                                              "bad_*.yaml")))
        self.assertGreater(len(paths), 15)
        for path in paths:
            if os.path.basename(path) in NOT_A_SCHEMA_MATTER:
                continue
            with open(path) as handle:
                config = load_yaml(handle)
            self.assertNotEqual(self.errors(config), [], path)

    def test_rules_across_fields(self):
        base = """listeners: [{address: 127.0.0.1:8080}]
upstreams:
  cs:
    servers: [{address: 127.0.0.1:8081}]
routes: [{match: {prefix: /}, upstream: cs}]
"""
        self.assertEqual(self.errors(load_yaml(base)), [])
        bad = {
            "both address and dns": ("{address: 127.0.0.1:8081}",
                                     "{address: 127.0.0.1:8081, dns: cs:8081}"),
            "neither address nor dns": ("{address: 127.0.0.1:8081}", "{weight: 2}"),
            "hash_key without maglev": ("servers:", "hash_key: path\n    servers:"),
            "verified TLS without a CA": ("servers:", "tls: {server_name: cs}\n    servers:"),
            "watch on a read route": ("upstream: cs}", "upstream: cs, kind: read, "
                                                       "watch: {max_hold: 1m}}"),
            "a retry condition": ("servers:", "retries: {on: [sometimes]}\n    servers:"),
            "a zero interval": ("servers:", "health_check: {interval: 0s}\n    servers:"),
            "workers above 256": ("upstreams:", "workers: 257\nupstreams:"),
            "a query of two parameters": ("prefix: /}", "prefix: /, query: {a: '1', b: '2'}}"),
        }
        for name, (old, new) in bad.items():
            self.assertIn(old, base)
            self.assertNotEqual(self.errors(load_yaml(base.replace(old, new, 1))), [], name)
        good = {
            "maglev with its key": ("servers:", "balancer: maglev\n    hash_key: header:X-Id\n"
                                                "    servers:"),
            "insecure TLS": ("servers:", "tls: {insecure_skip_verify: true}\n    servers:"),
            "a watch route": ("upstream: cs}", "upstream: cs, kind: watch, "
                                               "watch: {max_hold: 0s}}"),
            "retries on statuses": ("servers:", "retries: {on: [reset, 503, '504']}\n    servers:"),
            "a query with a value": ("prefix: /}", "prefix: /, query: {wait: 'true'}}"),
        }
        for name, (old, new) in good.items():
            self.assertEqual(self.errors(load_yaml(base.replace(old, new, 1))), [], name)

    def check_verdicts(self, template, values):
        """The schema and `confgate --check` say the same of each value put into `template`."""
        for value in values:
            text = template % value
            with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False) as handle:
                handle.write(text)
            try:
                result = subprocess.run([CONFGATE_BIN, "--check", "-c", handle.name],
                                        capture_output=True, text=True, timeout=30)
            finally:
                os.unlink(handle.name)
            schema_ok = not self.errors(load_yaml(text))
            self.assertEqual(schema_ok, result.returncode == 0,
                             "%r: schema %s, confgate --check: %s" %
                             (value, "ok" if schema_ok else "refuses", result.stdout.strip()))

    def test_value_formats_agree_with_confgate_check(self):
        template = """listeners: [{address: "%s"}]
upstreams:
  cs:
    servers: [{address: 127.0.0.1:8081}]
routes: [{match: {prefix: /}, upstream: cs}]
"""
        self.check_verdicts(template, ["127.0.0.1:8080", "127.0.0.1:0", "[::1]:8080",
                                       "127.0.0.1", "127.0.0.1:65536", "::1:8080", ":8080"])
        template = """listeners: [{address: 127.0.0.1:8080}]
limits: {header_timeout: %s, drain_timeout: 0s}
upstreams:
  cs:
    servers: [{address: 127.0.0.1:8081}]
routes: [{match: {prefix: /}, upstream: cs}]
"""
        # Durations: whatever unit confgate learns, the schema must learn too.
        self.check_verdicts(template, ["500ms", "2s", "1.5s", "1m", "24h", "0s", "10", "2 s",
                                       "1m30s", "1500us", "90ns", "-1s", "1d", "s"])
        self.check_verdicts(template.replace("header_timeout: %s, drain_timeout: 0s",
                                             "header_timeout: 1s, drain_timeout: %s"),
                            ["0s", "0ms", "15s", "0"])
        template = template.replace("header_timeout: %s, drain_timeout: 0s",
                                    "max_request_body_bytes: %s")
        self.check_verdicts(template, ["4096", "1", "64KiB", "8MiB", "1GiB", "8MB", "64M",
                                       "64Mi", "0", "0KiB", "1.5KiB", "10 MiB"])
        template = """listeners: [{address: 127.0.0.1:8080}]
upstreams:
  cs:
    servers: [{address: 127.0.0.1:8081}]
    panic_threshold: %s
routes: [{match: {prefix: /}, upstream: cs}]
"""
        self.check_verdicts(template, ["0%", "50%", "12.5%", "100%", "101%", "50", "-1%"])


if __name__ == "__main__":
    unittest.main()

"""deploy/grafana/confgate-dashboard.json: valid JSON that Grafana can import, every query valid
PromQL (promtool, when installed), and every metric and label it uses exists in the /metrics of a
real confgate (started here in front of real replicas) or is documented in docs/operations.md."""

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import unittest

import yaml

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "support"))
from confgate_harness import SOURCE_DIR, ProxyTestCase, admin_call  # noqa: E402

DASHBOARD = os.path.join(SOURCE_DIR, "deploy", "grafana", "confgate-dashboard.json")
# Labels Prometheus adds to every scraped series.
TARGET_LABELS = {"instance", "job"}
FUNCTIONS = {"sum", "max", "min", "avg", "count", "rate", "increase", "histogram_quantile",
             "label_replace", "label_values", "by", "without", "on", "ignoring"}


def load_dashboard():
    with open(DASHBOARD) as handle:
        return json.load(handle)


def queries(dashboard):
    """(where, expr) of every panel query and template variable."""
    found = []
    for panel in dashboard["panels"]:
        for target in panel.get("targets", []):
            found.append((panel["title"], target["expr"]))
    for variable in dashboard["templating"]["list"]:
        if variable["type"] == "query":
            found.append(("$" + variable["name"], variable["query"]["query"]))
    return found


def scraped_families(text):
    """{metric name: set of label names} from a Prometheus text exposition."""
    families = {}
    for line in text.splitlines():
        match = re.match(r"([a-zA-Z_:][a-zA-Z0-9_:]*)(\{([^}]*)\})? ", line)
        if match and not line.startswith("#"):
            labels = set(re.findall(r"([a-zA-Z_][a-zA-Z0-9_]*)=\"", match.group(3) or ""))
            families.setdefault(match.group(1), set()).update(labels)
    return families


def documented_metrics():
    with open(os.path.join(SOURCE_DIR, "docs", "operations.md")) as handle:
        text = handle.read()
    documented = {}
    for name, labels in re.findall(r"^\| `(confgate_[a-z_]+)` \| ([a-z_, ]*) \|", text, re.M):
        documented[name] = {label.strip() for label in labels.split(",") if label.strip()}
    return documented


class DashboardShapeTest(unittest.TestCase):
    def test_importable_json(self):
        dashboard = load_dashboard()
        self.assertEqual(dashboard["uid"], "confgate")
        self.assertIsInstance(dashboard["schemaVersion"], int)
        ids = [panel["id"] for panel in dashboard["panels"]]
        self.assertEqual(len(ids), len(set(ids)))
        for panel in dashboard["panels"]:
            position = panel["gridPos"]
            self.assertLessEqual(position["x"] + position["w"], 24, panel["title"])
            if panel["type"] == "row":
                continue
            self.assertTrue(panel["targets"], panel["title"])
            self.assertEqual(panel["datasource"]["uid"], "${datasource}", panel["title"])
            for target in panel["targets"]:
                self.assertTrue(target["expr"].strip(), panel["title"])
        variables = {variable["name"] for variable in dashboard["templating"]["list"]}
        self.assertEqual(variables, {"datasource", "instance", "upstream"})

    def test_covers_what_an_operator_looks_for(self):
        text = " ".join(expr for _, expr in queries(load_dashboard()))
        for needed in ("confgate_requests_total", "label_replace(",  # code classes
                       "histogram_quantile(0.99", "confgate_request_duration_seconds_bucket",
                       "confgate_upstream_host_available", "confgate_upstream_host_ejected",
                       "confgate_upstream_host_ejections_total", "confgate_upstream_mode",
                       "confgate_cache_lookups_total", "confgate_cache_bytes",
                       "confgate_watches_active", "confgate_config_reloads_total"):
            self.assertIn(needed, text)

    def test_queries_are_valid_promql(self):
        promtool = shutil.which("promtool")
        if promtool is None:
            self.skipTest("promtool is installed by scripts/setup.sh (Debian package prometheus)")
        rules = []
        for index, (where, expr) in enumerate(queries(load_dashboard())):
            if expr.startswith("label_values("):
                continue  # Grafana's, not PromQL
            expr = (expr.replace("$__rate_interval", "5m").replace("$__range", "1h")
                    .replace('"$instance"', '".*"').replace('"$upstream"', '".*"'))
            self.assertNotIn("$", expr.replace("${1}", ""), where)
            rules.append({"record": "dashboard:query_%d" % index, "expr": expr})
        with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False) as handle:
            yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}, handle)
        self.addCleanup(os.unlink, handle.name)
        result = subprocess.run([promtool, "check", "rules", handle.name], capture_output=True,
                                text=True, timeout=60)
        self.assertEqual(result.returncode, 0, result.stdout + result.stderr)


class DashboardMetricsTest(ProxyTestCase, unittest.TestCase):
    def test_every_metric_and_label_exists(self):
        replicas = self.start_replicas(2)
        routes = """routes:
  - match: {prefix: /v1/kv/, query: index}
    upstream: config-service
    kind: watch
  - match: {prefix: /}
    upstream: config-service
    kind: auto
    cache: {enabled: true, max_stale: 1h}
"""
        proxy = self.start_proxy(
            replicas, routes=routes,
            upstream_extra="    health_check: {type: http, path: /health, interval: 1s}\n")
        for _ in range(3):
            status, _, _ = self.request(proxy, "GET", "/v1/kv/dashboard")
            self.assertIn(status, (200, 404))
        status, text = admin_call(proxy, "GET", "/metrics")
        self.assertEqual(status, 200)
        families = scraped_families(text)
        documented = documented_metrics()
        self.assertIn("confgate_requests_total", documented)
        for where, expr in queries(load_dashboard()):
            # label_replace(v, "dst", "replacement", "src", "regex") makes "dst".
            created = set(re.findall(r',\s*"([a-z_]+)",\s*"[^"]*",\s*"[a-z_]+",\s*"[^"]*"\s*\)',
                                     expr))
            used = set()
            for name, selector in re.findall(r"\b(confgate_[a-z_]+)(\{[^}]*\})?", expr):
                base = re.sub(r"_(bucket|sum|count)$", "", name)
                if name in families:
                    labels = families[name]
                elif base in documented:
                    labels = documented[base] | ({"le"} if name.endswith("_bucket") else set())
                else:
                    self.fail("%s: %s is neither in /metrics nor documented" % (where, name))
                used |= labels
                for label in re.findall(r"([a-z_]+)\s*[!=]~?", selector):
                    self.assertIn(label, labels | TARGET_LABELS, "%s: %s" % (where, name))
            # Every label a query groups by comes from its metrics, the target or label_replace.
            for grouping in re.findall(r"\bby\s*\(([^)]*)\)", expr):
                for label in (part.strip() for part in grouping.split(",")):
                    self.assertIn(label, used | TARGET_LABELS | created, where)


if __name__ == "__main__":
    unittest.main()

"""docker/ and conf/: the compose file, the Kubernetes manifests, the Dockerfile, the
Prometheus config and alert rules are well-formed and agree with the proxy they describe."""

import os
import re
import shutil
import subprocess
import sys
import tempfile
import unittest

import yaml

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "support"))
from confgate_harness import CONFGATE_BIN, SOURCE_DIR  # noqa: E402


def path(*parts):
    return os.path.join(SOURCE_DIR, *parts)


def load_all(relative):
    with open(path(relative)) as handle:
        return [document for document in yaml.safe_load_all(handle) if document]


def check_confgate_file(test, text, files=None):
    """`confgate --check` passes on `text`; `files` maps paths it names to stand-ins."""
    for name, stand_in in (files or {}).items():
        text = text.replace(name, stand_in)
    with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False) as handle:
        handle.write(text)
    test.addCleanup(os.unlink, handle.name)
    result = subprocess.run([CONFGATE_BIN, "--check", "-c", handle.name], capture_output=True,
                            text=True, timeout=30)
    test.assertEqual(result.returncode, 0, result.stdout)
    return yaml.safe_load(text)


def port_of(address):
    return int(str(address).rsplit(":", 1)[1])


class KubernetesManifestTest(unittest.TestCase):
    def check_shape(self, relative, files=None):
        documents = load_all(relative)
        kinds = {document["kind"]: document for document in documents}
        config = check_confgate_file(self, next(iter(kinds["ConfigMap"]["data"].values())),
                                     files)
        admin_port = port_of(config["admin"]["address"])
        listener_port = port_of(config["listeners"][0]["address"])
        pod = kinds["Deployment"]["spec"]["template"]["spec"]
        # A sidecar is a native one: an initContainer with restartPolicy: Always.
        container = next(c for c in pod["containers"] + pod.get("initContainers", [])
                         if c["name"] == "confgate")
        self.assertEqual(container["volumeMounts"][0]["mountPath"], "/etc/confgate")
        self.assertIn("/etc/confgate/confgate.yaml", container["args"])
        return kinds, config, container, admin_port, listener_port

    def test_edge(self):
        with tempfile.NamedTemporaryFile("w", delete=False) as token:
            token.write("t" * 64)
        self.addCleanup(os.unlink, token.name)
        kinds, config, container, admin_port, listener_port = self.check_shape(
            "docker/k8s/edge.yaml", {"/etc/confgate-admin/token": token.name})
        self.assertEqual(container["readinessProbe"]["httpGet"],
                         {"path": "/readyz", "port": admin_port})
        self.assertEqual(container["livenessProbe"]["httpGet"],
                         {"path": "/healthz", "port": admin_port})
        ports = {port["name"]: port["containerPort"] for port in container["ports"]}
        self.assertEqual(ports, {"http": listener_port, "admin": admin_port})
        self.assertEqual(kinds["Service"]["spec"]["type"], "LoadBalancer")
        self.assertEqual(kinds["Service"]["spec"]["ports"][0]["targetPort"], listener_port)
        self.assertIn("PodDisruptionBudget", kinds)

    def test_edge_guards_its_exposed_admin_port(self):
        kinds = {document["kind"]: document for document in load_all("docker/k8s/edge.yaml")}
        config = yaml.safe_load(next(iter(kinds["ConfigMap"]["data"].values())))
        admin_port = port_of(config["admin"]["address"])
        self.assertTrue(config["admin"]["address"].startswith("0.0.0.0:"))
        # Mutating calls need the token, mounted from a Secret where the file says.
        token_file = config["admin"]["token_file"]
        pod = kinds["Deployment"]["spec"]["template"]["spec"]
        container = next(c for c in pod["containers"] if c["name"] == "confgate")
        mount = next(m for m in container["volumeMounts"]
                     if token_file.startswith(m["mountPath"] + "/"))
        volume = next(v for v in pod["volumes"] if v["name"] == mount["name"])
        self.assertIn("secretName", volume["secret"])
        # confgate runs as a non-root user: the file is its group's (fsGroup) and group-readable.
        self.assertIn("fsGroup", pod["securityContext"])
        self.assertTrue(volume["secret"]["defaultMode"] & 0o040, oct(volume["secret"]["defaultMode"]))
        # Reads need no token: only the monitoring namespace may reach the admin port.
        rules = kinds["NetworkPolicy"]["spec"]["ingress"]
        admin_rules = [rule for rule in rules
                       if any(port["port"] == admin_port for port in rule["ports"])]
        self.assertEqual(len(admin_rules), 1)
        self.assertEqual(admin_rules[0]["from"], [{"namespaceSelector": {"matchLabels": {
            "kubernetes.io/metadata.name": "monitoring"}}}])

    def test_sidecar_keeps_admin_on_localhost(self):
        _, config, container, admin_port, _ = self.check_shape("docker/k8s/sidecar.yaml")
        self.assertTrue(config["admin"]["address"].startswith("127.0.0.1:"))
        command = " ".join(container["readinessProbe"]["exec"]["command"])
        self.assertIn("http://127.0.0.1:%d/readyz" % admin_port, command)


class ComposeAndDockerfileTest(unittest.TestCase):
    def test_compose(self):
        compose = load_all("docker/compose.yaml")[0]
        services = compose["services"]
        self.assertEqual({"replica-1", "replica-2", "replica-3", "confgate", "prometheus"},
                         set(services))
        with open(path("docker", "compose-confgate.yaml")) as handle:
            config = check_confgate_file(self, handle.read())
        servers = config["upstreams"]["config-service"]["servers"]
        for index, server in enumerate(servers, start=1):
            name, port = server["dns"].split(":")
            self.assertEqual(name, "replica-%d" % index)
            self.assertIn(port, services[name]["entrypoint"])
        self.assertIn("8080:8080", services["confgate"]["ports"])
        # The admin port is published on the host's loopback only.
        self.assertIn("127.0.0.1:9901:9901", services["confgate"]["ports"])
        self.assertFalse([p for p in services["confgate"]["ports"] if p.startswith("9901:")])

    def test_dockerfile(self):
        with open(path("docker", "Dockerfile")) as handle:
            dockerfile = handle.read()
        self.assertIn("FROM debian:bookworm AS build", dockerfile)
        self.assertRegex(dockerfile, r"\nUSER 10001:10001\n")
        self.assertIn("http://127.0.0.1:9901/healthz", dockerfile)
        self.assertIn("COPY conf/confgate.yaml /etc/confgate/confgate.yaml", dockerfile)
        with open(path("conf", "confgate.yaml")) as handle:
            self.assertEqual(yaml.safe_load(handle)["admin"]["address"], "127.0.0.1:9901")
        # The image builds from the same Debian packages the README's set-up installs.
        with open(path("scripts", "setup.sh")) as handle:
            setup = handle.read()
        build_stage = dockerfile.split("FROM debian:bookworm-slim")[0]
        for package in re.findall(r"\b(lib[a-z0-9+.-]+-dev|node-llhttp)\b", build_stage):
            self.assertIn(package, setup)


class PrometheusConfigTest(unittest.TestCase):
    def test_alert_rules_pass_promtool(self):
        promtool = shutil.which("promtool")
        if promtool is None:
            self.skipTest("promtool is installed by scripts/setup.sh (Debian package prometheus)")
        result = subprocess.run([promtool, "check", "rules", path("conf", "prometheus", "alerts.yaml")],
                                capture_output=True, text=True, timeout=60)
        self.assertEqual(result.returncode, 0, result.stdout + result.stderr)
        names = {rule["alert"] for group in load_all("conf/prometheus/alerts.yaml")[0]["groups"]
                 for rule in group["rules"]}
        self.assertEqual(names, {"ConfgateUpstreamReadOnly", "ConfgateNoAvailableHost",
                                 "ConfgateHostEjected", "ConfgateReloadFailed",
                                 "ConfgateReloadKeepsFailing", "ConfgateHigh5xxRatio"})

    def test_alert_rules_keep_the_instance(self):
        # An aggregation without `instance` would hide one confgate process that lost every host
        # behind the others (docs/scale-out.md).
        for group in load_all("conf/prometheus/alerts.yaml")[0]["groups"]:
            for rule in group["rules"]:
                aggregations = re.findall(r"\b(?:sum|max|min|avg|count)\s+by\s*\(([^)]*)\)",
                                          rule["expr"])
                self.assertTrue(aggregations, rule["alert"])
                for labels in aggregations:
                    self.assertIn("instance", [label.strip() for label in labels.split(",")],
                                  rule["alert"])

    def test_every_alert_fires_and_clears_in_the_unit_tests(self):
        names = {rule["alert"] for group in load_all("conf/prometheus/alerts.yaml")[0]["groups"]
                 for rule in group["rules"]}
        fired, cleared = set(), set()
        for case in load_all("conf/prometheus/alerts_test.yaml")[0]["tests"]:
            checks = sorted(case["alert_rule_test"], key=lambda check: int(check["eval_time"][:-1]))
            seen_firing = set()
            for check in checks:
                self.assertTrue(check["eval_time"].endswith("m"), check)
                if check["exp_alerts"]:
                    seen_firing.add(check["alertname"])
                    fired.add(check["alertname"])
                elif check["alertname"] in seen_firing:
                    cleared.add(check["alertname"])
        self.assertEqual(fired, names)
        self.assertEqual(cleared, names)
        promtool = shutil.which("promtool")
        if promtool is None:
            self.skipTest("promtool is installed by scripts/setup.sh (Debian package prometheus)")
        result = subprocess.run([promtool, "test", "rules",
                                 path("conf", "prometheus", "alerts_test.yaml")],
                                capture_output=True, text=True, timeout=120)
        self.assertEqual(result.returncode, 0, result.stdout + result.stderr)

    def test_scrape_config_points_at_the_admin_listener(self):
        config = load_all("conf/prometheus/prometheus.yaml")[0]
        job = config["scrape_configs"][0]
        self.assertEqual(job["metrics_path"], "/metrics")
        self.assertTrue(job["static_configs"][0]["targets"][0].endswith(":9901"))


class ScaleOutDocTest(unittest.TestCase):
    """docs/scale-out.md: the topics it must cover, paths that exist, PromQL that parses, and
    health-check arithmetic that adds up."""

    def setUp(self):
        with open(path("docs", "scale-out.md")) as handle:
            self.text = handle.read()

    def test_topics(self):
        headings = re.findall(r"^## (.+)$", self.text, re.M)
        self.assertEqual(headings, ["Several instances behind a Service or DNS", "Sidecar or edge",
                                    "What differs between instances",
                                    "Load on the replicas from many instances",
                                    "Alerting across instances"])
        for needed in ("Caches.", "Health and ejection.", "Admin calls are per instance.",
                       "count by (upstream) (confgate_upstream_mode == 2)"):
            self.assertIn(needed, self.text)

    def test_named_files_exist(self):
        named = set(re.findall(r"`((?:docs|conf|deploy|docker|scripts)/[^`\s]*)`", self.text))
        self.assertGreater(len(named), 5)
        for name in named:
            self.assertTrue(os.path.exists(path(name)), name)

    def test_health_check_load_table(self):
        rows = re.findall(r"^\| (\d+)[^|]* \| (\d+)s \| ([\d.]+)", self.text, re.M)
        self.assertEqual(len(rows), 4)
        for instances, interval, per_second in rows:
            self.assertAlmostEqual(int(instances) / int(interval), float(per_second))

    def test_promql_parses(self):
        promtool = shutil.which("promtool")
        if promtool is None:
            self.skipTest("promtool is installed by scripts/setup.sh (Debian package prometheus)")
        blocks = re.findall(r"```promql\n(.*?)```", self.text, re.S)
        self.assertEqual(len(blocks), 2)
        rules = {"groups": [{"name": "doc", "rules": [
            {"record": "doc:query_%d" % index, "expr": block.strip()}
            for index, block in enumerate(blocks)]}]}
        with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False) as handle:
            yaml.safe_dump(rules, handle)
        self.addCleanup(os.unlink, handle.name)
        result = subprocess.run([promtool, "check", "rules", handle.name], capture_output=True,
                                text=True, timeout=60)
        self.assertEqual(result.returncode, 0, result.stdout + result.stderr)


if __name__ == "__main__":
    unittest.main()

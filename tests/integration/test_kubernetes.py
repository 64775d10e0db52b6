"""The Helm chart (deploy/helm/confgate) and the plain manifests (docker/k8s): the restricted Pod
Security profile on every container, resources, a preStop pause that fits in the grace period
with the drain, topology spread, a PodDisruptionBudget, a NetworkPolicy, a ServiceMonitor, a
native sidecar, no namespace named anywhere, and upstream files that `confgate --check` accepts.
The chart is rendered with `helm` when it is installed; without it, its values and templates are
checked as text."""

import glob
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

CHART = os.path.join(SOURCE_DIR, "deploy", "helm", "confgate")
RESTRICTED_CONTAINER = {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]},
                        "readOnlyRootFilesystem": True, "runAsNonRoot": True,
                        "seccompProfile": {"type": "RuntimeDefault"}}


def parse_duration_seconds(text):
    number, unit = re.fullmatch(r"([0-9.]+)(ms|s|m|h)", text).groups()
    return float(number) * {"ms": 0.001, "s": 1, "m": 60, "h": 3600}[unit]


def check_upstream_file(test, text):
    """`confgate --check` accepts `text` (paths under /var/lib/confgate and /etc/confgate-admin
    point at stand-ins); its parsed form."""
    directory = tempfile.mkdtemp(prefix="confgate-k8s-")
    test.addCleanup(shutil.rmtree, directory)
    token = os.path.join(directory, "token")
    with open(token, "w") as handle:
        handle.write("t" * 64)
    local = text.replace("/var/lib/confgate/", directory + "/").replace(
        "/etc/confgate-admin/token", token)
    path = os.path.join(directory, "confgate.yaml")
    with open(path, "w") as handle:
        handle.write(local)
    result = subprocess.run([CONFGATE_BIN, "--check", "-c", path], capture_output=True, text=True,
                            timeout=30)
    test.assertEqual(result.returncode, 0, result.stdout)
    return yaml.safe_load(text)


def check_no_namespace(test, documents, where):
    for document in documents:
        test.assertNotIn("namespace", document.get("metadata", {}), where)
    # Nor inside an upstream file: `NAME.NAMESPACE.svc...` pins the replicas' namespace.
    text = yaml.safe_dump_all(documents)
    test.assertNotRegex(text, r"\.svc\b", where)


def check_pod(test, pod, where):
    """The restricted Pod Security Standard, resources on confgate, probes on the admin port."""
    security = pod["securityContext"]
    test.assertTrue(security["runAsNonRoot"], where)
    test.assertNotEqual(security.get("runAsUser"), 0, where)
    test.assertEqual(security["seccompProfile"], {"type": "RuntimeDefault"}, where)
    test.assertFalse(pod.get("automountServiceAccountToken", True), where)
    containers = pod["containers"] + pod.get("initContainers", [])
    for container in containers:
        context = container.get("securityContext", {})
        for key, value in RESTRICTED_CONTAINER.items():
            test.assertEqual(context.get(key), value, "%s: %s.%s" % (where, container["name"], key))
    confgate = next(c for c in containers if c["name"] == "confgate")
    test.assertIn("memory", confgate["resources"]["limits"], where)
    test.assertIn("cpu", confgate["resources"]["requests"], where)
    for volume in pod.get("volumes", []):
        test.assertNotIn("hostPath", volume, where)
    return confgate


def check_edge(test, documents, where):
    by_kind = {}
    for document in documents:
        by_kind.setdefault(document["kind"], []).append(document)
    for kind in ("ConfigMap", "Deployment", "Service", "PodDisruptionBudget", "NetworkPolicy"):
        test.assertIn(kind, by_kind, where)
    deployment = by_kind["Deployment"][0]
    pod = deployment["spec"]["template"]["spec"]
    confgate = check_pod(test, pod, where)
    config = check_upstream_file(test, next(iter(by_kind["ConfigMap"][0]["data"].values())))
    # The preStop pause, then the drain, fit in the grace period.
    pause = confgate["lifecycle"]["preStop"]["exec"]["command"]
    test.assertEqual(pause[0], "/bin/sleep", where)
    drain = parse_duration_seconds(config.get("limits", {}).get("drain_timeout", "15s"))
    test.assertGreater(pod["terminationGracePeriodSeconds"], int(pause[1]) + drain, where)
    test.assertGreaterEqual(int(pause[1]), 3, where)
    # Spread over zones and nodes.
    keys = {c["topologyKey"] for c in pod["topologySpreadConstraints"]}
    test.assertEqual(keys, {"topology.kubernetes.io/zone", "kubernetes.io/hostname"}, where)
    # Probes on the admin listener.
    admin_port = int(config["admin"]["address"].rsplit(":", 1)[1])
    ports = {port["name"]: port["containerPort"] for port in confgate["ports"]}
    test.assertEqual(ports["admin"], admin_port, where)
    test.assertEqual(confgate["readinessProbe"]["httpGet"]["path"], "/readyz", where)
    test.assertIn(confgate["readinessProbe"]["httpGet"]["port"], ("admin", admin_port), where)
    test.assertEqual(deployment["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"], 0, where)
    pdb = by_kind["PodDisruptionBudget"][0]["spec"]
    test.assertTrue("maxUnavailable" in pdb or "minAvailable" in pdb, where)
    # The admin port (reads need no token) is open to the monitoring namespace only.
    policy = by_kind["NetworkPolicy"][0]["spec"]
    admin_rules = [rule for rule in policy["ingress"]
                   if any(port["port"] == admin_port for port in rule["ports"])]
    test.assertEqual(len(admin_rules), 1, where)
    test.assertTrue(admin_rules[0]["from"], where)
    return by_kind


def check_sidecar(test, deployment, config_text, where):
    pod = deployment["spec"]["template"]["spec"]
    confgate = check_pod(test, pod, where)
    # A native sidecar: an initContainer that keeps running, ready before the application starts.
    test.assertIn(confgate, pod.get("initContainers", []), where)
    test.assertEqual(confgate["restartPolicy"], "Always", where)
    config = check_upstream_file(test, config_text)
    test.assertTrue(config["admin"]["address"].startswith("127.0.0.1:"), where)
    admin_port = config["admin"]["address"].rsplit(":", 1)[1]
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        command = " ".join(confgate[probe]["exec"]["command"])
        test.assertIn("http://127.0.0.1:%s/" % admin_port, command, where)


class PlainManifestsTest(unittest.TestCase):
    def load(self, name):
        with open(os.path.join(SOURCE_DIR, "docker", "k8s", name)) as handle:
            return [document for document in yaml.safe_load_all(handle) if document]

    def test_no_namespace_anywhere(self):
        for path in glob.glob(os.path.join(SOURCE_DIR, "docker", "k8s", "*.yaml")):
            check_no_namespace(self, self.load(os.path.basename(path)), path)

    def test_edge(self):
        check_edge(self, self.load("edge.yaml"), "docker/k8s/edge.yaml")

    def test_sidecar(self):
        documents = self.load("sidecar.yaml")
        config_map = next(d for d in documents if d["kind"] == "ConfigMap")
        deployment = next(d for d in documents if d["kind"] == "Deployment")
        check_sidecar(self, deployment, config_map["data"]["confgate.yaml"],
                      "docker/k8s/sidecar.yaml")

    def test_service_monitor_selects_the_admin_service(self):
        documents = self.load("servicemonitor.yaml")
        service = next(d for d in documents if d["kind"] == "Service")
        monitor = next(d for d in documents if d["kind"] == "ServiceMonitor")
        labels = monitor["spec"]["selector"]["matchLabels"]
        self.assertEqual({k: service["metadata"]["labels"][k] for k in labels}, labels)
        self.assertEqual(monitor["spec"]["endpoints"][0]["port"], service["spec"]["ports"][0]["name"])
        self.assertEqual(service["spec"]["ports"][0]["port"], 9901)


class HelmChartTest(unittest.TestCase):
    def setUp(self):
        with open(os.path.join(CHART, "values.yaml")) as handle:
            self.values = yaml.safe_load(handle)

    def template(self, name):
        with open(os.path.join(CHART, "templates", name)) as handle:
            return handle.read()

    def test_values(self):
        values = self.values
        self.assertEqual(values["containerSecurityContext"], RESTRICTED_CONTAINER)
        pod = values["podSecurityContext"]
        self.assertTrue(pod["runAsNonRoot"])
        self.assertEqual(pod["seccompProfile"], {"type": "RuntimeDefault"})
        self.assertIn("memory", values["resources"]["limits"])
        for key in ("config", "sidecarExample"):
            text = values[key] if key == "config" else values[key]["config"]
            config = check_upstream_file(self, text)
            self.assertEqual(config["admin"]["address"].startswith("0.0.0.0:"), key == "config")
        config = yaml.safe_load(values["config"])
        self.assertEqual(int(config["listeners"][0]["address"].rsplit(":", 1)[1]),
                         values["ports"]["http"])
        self.assertEqual(int(config["admin"]["address"].rsplit(":", 1)[1]), values["ports"]["admin"])
        drain = parse_duration_seconds(config["limits"]["drain_timeout"])
        self.assertGreater(values["terminationGracePeriodSeconds"],
                           values["preStopPauseSeconds"] + drain)

    def test_templates(self):
        """What `helm template` would show, read from the templates (helm need not be here)."""
        names = os.listdir(os.path.join(CHART, "templates"))
        for name in names:
            if name.endswith(".yaml"):
                self.assertNotRegex(self.template(name), r"(?m)^\s*namespace:", name)
        deployment = self.template("deployment.yaml")
        sidecar = self.template("sidecar-example.yaml")
        for text in (deployment, sidecar):
            self.assertIn("toYaml .Values.podSecurityContext", text)
            self.assertIn("toYaml .Values.containerSecurityContext", text)
            self.assertIn("automountServiceAccountToken: false", text)
        self.assertEqual(deployment.count("toYaml .Values.containerSecurityContext"), 1)
        self.assertIn("toYaml .Values.resources", deployment)
        self.assertRegex(deployment, r"preStop:\s+exec:\s+command: \[\"/bin/sleep\", "
                                     r"\"\{\{ \.Values\.preStopPauseSeconds \}\}\"\]")
        self.assertIn("terminationGracePeriodSeconds: {{ .Values.terminationGracePeriodSeconds }}",
                      deployment)
        self.assertIn("topologySpreadConstraints:", deployment)
        self.assertIn("topology.kubernetes.io/zone", deployment)
        # The sidecar is native: under initContainers, with restartPolicy: Always, and it is the
        # only container there.
        init = sidecar.split("initContainers:")[1].split("containers:")[0]
        self.assertEqual(init.count("- name:"), 1)
        self.assertIn("- name: confgate", init)
        self.assertIn("restartPolicy: Always", init)
        self.assertEqual(sidecar.count("toYaml .Values.containerSecurityContext"), 2)
        kinds = {re.search(r"(?m)^kind: (\w+)", self.template(name)).group(1)
                 for name in names if name.endswith(".yaml")}
        self.assertTrue({"ConfigMap", "Deployment", "Service", "PodDisruptionBudget",
                         "NetworkPolicy", "ServiceMonitor"} <= kinds, kinds)

    def render(self, *args):
        result = subprocess.run([self.helm, "template", "confgate", CHART, *args],
                                capture_output=True, text=True, timeout=120)
        self.assertEqual(result.returncode, 0, result.stderr)
        return [document for document in yaml.safe_load_all(result.stdout) if document]

    def test_rendered_with_helm(self):
        self.helm = shutil.which("helm")
        if self.helm is None:
            self.skipTest("helm is not installed (not a Debian package); test_templates read "
                          "the templates instead")
        lint = subprocess.run([self.helm, "lint", CHART], capture_output=True,
                              text=True, timeout=120)
        self.assertEqual(lint.returncode, 0, lint.stdout + lint.stderr)
        documents = self.render("--set", "sidecarExample.enabled=true", "--api-versions",
                                "monitoring.coreos.com/v1/ServiceMonitor")
        check_no_namespace(self, documents, "helm template")
        name = "confgate"
        edge = [d for d in documents if not d["metadata"]["name"].startswith(name + "-sidecar")]
        by_kind = check_edge(self, edge, "helm template (edge)")
        self.assertIn("ServiceMonitor", by_kind)
        sidecar = [d for d in documents if d["metadata"]["name"].startswith(name + "-sidecar")]
        config_map = next(d for d in sidecar if d["kind"] == "ConfigMap")
        deployment = next(d for d in sidecar if d["kind"] == "Deployment")
        check_sidecar(self, deployment, config_map["data"]["confgate.yaml"],
                      "helm template (sidecar)")
        # Without the CRD the ServiceMonitor is left out, so a plain cluster can install it.
        kinds = {d["kind"] for d in self.render()}
        self.assertNotIn("ServiceMonitor", kinds)


if __name__ == "__main__":
    unittest.main()

"""The admin listener: health, readiness, status, config, metrics, drain/enable, the read-only
override, and access control."""

import datetime
import json
import os
import re
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "support"))
from confgate_harness import (Proxy, ProxyTestCase, admin_call,  # noqa: E402
                              write_confgate_config)

METRIC_NAMES = [
    "confgate_requests_total", "confgate_request_duration_seconds",
    "confgate_upstream_requests_total", "confgate_upstream_host_available",
    "confgate_upstream_host_ejected", "confgate_upstream_host_ejections_total",
    "confgate_upstream_active_requests", "confgate_watches_active",
    "confgate_health_checks_total", "confgate_retries_total", "confgate_upstream_mode",
    "confgate_cache_lookups_total", "confgate_cache_bytes",
    "confgate_downstream_connections_active", "confgate_config_reloads_total",
    "confgate_allocation_failures_total",
]


class AdminTest(ProxyTestCase, unittest.TestCase):
    def setUp(self):
        self.replicas = self.start_replicas(2)
        self.proxy = self.start_proxy(
            self.replicas, workers=1,
            upstream_extra="    health_check: {type: tcp, interval: 1s, timeout: 500ms}",
            routes="""routes:
  - match: {prefix: /}
    upstream: config-service
    kind: auto
    cache: {enabled: true, default_ttl: 60s}
""")

    def test_health_readiness_status_and_config(self):
        self.assertEqual(admin_call(self.proxy, "GET", "/healthz"), (200, "ok\n"))
        self.assertEqual(admin_call(self.proxy, "GET", "/readyz")[0], 200)
        status, body = admin_call(self.proxy, "GET", "/status")
        self.assertEqual(status, 200)
        upstream = json.loads(body)["upstreams"][0]
        self.assertEqual((upstream["name"], upstream["mode"]), ("config-service", "normal"))
        self.assertEqual({host["address"] for host in upstream["hosts"]},
                         {replica.address for replica in self.replicas})
        self.assertTrue(all(host["health"] == "healthy" for host in upstream["hosts"]))
        config = json.loads(admin_call(self.proxy, "GET", "/config")[1])
        self.assertEqual(config["routes"][0]["cache"], True)

    def test_status_counts_requests_and_failures_per_host(self):
        self.replicas[0].fault("error")
        for index in range(6):
            self.request(self.proxy, "GET", "/v1/kv/status-%d" % index)
        hosts = {host["address"]: host for host in json.loads(
            admin_call(self.proxy, "GET", "/status")[1])["upstreams"][0]["hosts"]}
        failing, healthy = hosts[self.replicas[0].address], hosts[self.replicas[1].address]
        self.assertGreaterEqual(failing["requests"], 3)
        self.assertEqual(failing["failures"], failing["requests"])
        self.assertEqual((failing["last_failure"]["reason"], failing["last_failure"]["status"]),
                         ("status", 500))
        failed_at = datetime.datetime.strptime(failing["last_failure"]["time"],
                                               "%Y-%m-%dT%H:%M:%S.%fZ")
        now = datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None)
        self.assertLess(abs((now - failed_at).total_seconds()), 30)
        self.assertGreaterEqual(healthy["requests"], 3)
        self.assertEqual((healthy["failures"], healthy["last_failure"]), (0, None))
        # A host that refuses connections says so.
        self.replicas[1].stop()
        for index in range(4):
            self.request(self.proxy, "GET", "/v1/kv/down-%d" % index)
        down = [host for host in json.loads(admin_call(self.proxy, "GET", "/status")[1])
                ["upstreams"][0]["hosts"] if host["address"] == self.replicas[1].address][0]
        self.assertGreaterEqual(down["failures"], 1)
        self.assertEqual(down["last_failure"]["reason"], "connect_failure")

    def test_metrics_exposition(self):
        for _ in range(4):
            self.request(self.proxy, "GET", "/health")
        status, text = admin_call(self.proxy, "GET", "/metrics")
        self.assertEqual(status, 200)
        for name in METRIC_NAMES:
            self.assertIn("# TYPE %s " % name, text)
        self.assertRegex(text, r'confgate_requests_total\{upstream="config-service",code="200"\} 4')
        self.assertRegex(text, r'confgate_cache_lookups_total\{upstream="config-service",result="hit"\} 3')
        self.assertRegex(text, r'confgate_request_duration_seconds_count\{upstream="config-service"\} 4')
        self.assertIn('confgate_upstream_mode{upstream="config-service"} 0', text)
        # Every sample line is "name{labels} value" (or name value).
        for line in text.splitlines():
            if line and not line.startswith("#"):
                self.assertRegex(line, r'^[a-z_]+(\{[^}]*\})? [-+0-9.eE]+|[+-]Inf|NaN$')

    def test_promtool_accepts_the_live_metrics(self):
        import shutil
        import subprocess
        promtool = shutil.which("promtool")
        if promtool is None:
            self.skipTest("promtool is installed by scripts/setup.sh (Debian package prometheus)")
        for _ in range(3):
            self.request(self.proxy, "GET", "/health")
        text = admin_call(self.proxy, "GET", "/metrics")[1]
        result = subprocess.run([promtool, "check", "metrics"], input=text, capture_output=True,
                                text=True, timeout=60)
        self.assertEqual(result.returncode, 0, result.stdout + result.stderr)

    def test_drain_enable_and_read_only_override(self):
        address = self.replicas[0].address
        self.assertEqual(admin_call(self.proxy, "POST",
                                    "/upstreams/config-service/hosts/%s/drain" % address)[0], 200)
        seen = {self.request(self.proxy, "GET", "/v1/kv/x?i=%d" % i)[1]["X-Replica-Id"]
                for i in range(6)}
        self.assertEqual(seen, {"replica-2"})
        admin_call(self.proxy, "POST", "/upstreams/config-service/hosts/%s/enable" % address)
        seen = {self.request(self.proxy, "GET", "/v1/kv/y?i=%d" % i)[1]["X-Replica-Id"]
                for i in range(6)}
        self.assertEqual(seen, {"replica-1", "replica-2"})
        self.assertEqual(admin_call(self.proxy, "POST",
                                    "/upstreams/config-service/hosts/1.2.3.4:5/drain")[0], 404)

        self.assertEqual(admin_call(self.proxy, "POST", "/upstreams/config-service/mode",
                                    b'{"read_only": true}')[0], 200)
        status, headers, _ = self.request(self.proxy, "PUT", "/v1/kv/z", body=b"1")
        self.assertEqual((status, headers["X-Confgate-Mode"]), (503, "read-only"))
        self.assertIn('confgate_upstream_mode{upstream="config-service"} 2',
                      admin_call(self.proxy, "GET", "/metrics")[1])
        admin_call(self.proxy, "POST", "/upstreams/config-service/mode", b'{"read_only": null}')
        self.assertEqual(self.request(self.proxy, "PUT", "/v1/kv/z", body=b"1")[0], 200)

    def test_mode_body_must_be_the_documented_json(self):
        mode = "/upstreams/config-service/mode"
        for body in [b'{"read_only": truex}', b'{"read_only": true', b'{"read_only": true}x',
                     b'{"read_only": "true"}', b'{"read_only": true, "read_only": false}',
                     b'{"read_only": true, "force": 1}', b'[true]', b'']:
            with self.subTest(body=body):
                status, text = admin_call(self.proxy, "POST", mode, body)
                self.assertEqual(status, 400)
                self.assertIn("read_only", json.loads(text)["error"])
        upstream = json.loads(admin_call(self.proxy, "GET", "/status")[1])["upstreams"][0]
        self.assertEqual(upstream["mode"], "normal")
        self.assertEqual(admin_call(self.proxy, "POST", mode, b'{"read_only": false}')[0], 200)
        self.assertEqual(admin_call(self.proxy, "POST", mode, b'{"read_only": null}')[0], 200)

    def test_reload_is_counted(self):
        for _ in range(2):
            self.request(self.proxy, "GET", "/health")
        status, body = admin_call(self.proxy, "POST", "/reload")
        self.assertEqual((status, json.loads(body)["result"]), (200, "reloaded"))
        text = admin_call(self.proxy, "GET", "/metrics")[1]
        self.assertIn('confgate_config_reloads_total{result="success"} 1', text)
        # The upstream's counters carry over to the reloaded configuration.
        self.assertIn('confgate_requests_total{upstream="config-service",code="200"} 2', text)
        self.assertIn('confgate_request_duration_seconds_count{upstream="config-service"} 2', text)


class AdminTokenTest(ProxyTestCase, unittest.TestCase):
    def test_mutating_calls_need_the_bearer_token(self):
        replicas = self.start_replicas(1)
        directory = tempfile.mkdtemp(prefix="confgate-admin-")
        token_path = os.path.join(directory, "admin.token")
        with open(token_path, "w") as handle:
            handle.write("s3cret-token\n")
        path = write_confgate_config(directory, replicas)
        with open(path) as handle:
            text = handle.read().replace("address: 127.0.0.1:0\nworkers",
                                         "address: 127.0.0.1:0\n  token_file: %s\nworkers"
                                         % token_path)
        with open(path, "w") as handle:
            handle.write(text)
        proxy = Proxy(path)
        self.addCleanup(proxy.kill)
        mode = "/upstreams/config-service/mode"
        self.assertEqual(admin_call(proxy, "POST", mode, b'{"read_only": true}')[0], 401)
        self.assertEqual(admin_call(proxy, "POST", mode, b'{"read_only": true}',
                                    token="wrong")[0], 401)
        self.assertEqual(admin_call(proxy, "POST", mode, b'{"read_only": true}',
                                    token="s3cret-token")[0], 200)
        self.assertNotIn("s3cret-token", admin_call(proxy, "GET", "/config")[1])
        self.assertFalse(any("s3cret-token" in line for line in proxy.stderr_lines()))


if __name__ == "__main__":
    unittest.main()

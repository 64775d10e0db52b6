"""Active health checks, outlier ejection, half-open re-admission and read-only mode against
real replicas. Detection and recovery times are printed for the closing note."""

import json
import os
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "support"))
from confgate_harness import (SLOW, Proxy, ProxyTestCase, Replica,  # noqa: E402
                              write_confgate_config)

FAST_CHECKS = """    health_check:
      type: http
      path: /health
      interval: 200ms
      timeout: 200ms
      jitter: 10%
      healthy_threshold: 2
      unhealthy_threshold: 2
"""


def wait_for_log(proxy, text, timeout=10.0, after=0):
    """Seconds until a stderr line (from index `after` on) contains `text`; fails on timeout."""
    started = time.time()
    while time.time() - started < timeout:
        lines = proxy.stderr_lines()[after:]
        if any(text in line for line in lines):
            return time.time() - started
        time.sleep(0.01)
    raise AssertionError("no log line with %r in %.1fs:\n%s"
                         % (text, timeout, "\n".join(proxy.stderr_lines())))


def requests_seen(replica):
    return replica.stats()["requests"]


class ActiveCheckTest(ProxyTestCase, unittest.TestCase):
    def test_killed_replica_is_marked_down_and_back_up(self):
        replicas = self.start_replicas(3)
        proxy = self.start_proxy(replicas, upstream_extra=FAST_CHECKS)
        port = replicas[1].port
        mark = len(proxy.stderr_lines())
        replicas[1].stop()
        down_after = wait_for_log(proxy, "host marked down", after=mark)
        # unhealthy_threshold x interval (+10% jitter) + timeout, with room for a busy machine.
        self.assertLess(down_after, 2 * 0.22 + 0.2 + 1.0 * SLOW)
        for _ in range(20):
            status, headers, _ = self.request(proxy, "GET", "/health")
            self.assertEqual(status, 200)
            self.assertNotEqual(headers["X-Replica-Id"], "replica-2")
        mark = len(proxy.stderr_lines())
        restarted = Replica("replica-2", ["--port", str(port)])
        self.addCleanup(restarted.stop)
        up_after = wait_for_log(proxy, "host marked up", after=mark)
        self.assertLess(up_after, 2 * 0.22 + 1.0 * SLOW)
        seen = {self.request(proxy, "GET", "/health")[1]["X-Replica-Id"] for _ in range(9)}
        self.assertIn("replica-2", seen)
        print("\n[health] detection %.0f ms, recovery %.0f ms" % (down_after * 1000,
                                                                 up_after * 1000))

    def test_listeners_open_after_the_first_round_of_checks(self):
        replicas = self.start_replicas(2)
        dead = Replica("dead")
        dead_address = dead.address
        dead.stop()

        class Dead:
            address = dead_address

        proxy = self.start_proxy(replicas + [Dead()], upstream_extra=FAST_CHECKS.replace(
            "interval: 200ms", "interval: 5s"))
        lines = proxy.stderr_lines()
        down = next(i for i, line in enumerate(lines) if "host marked down" in line)
        listening = next(i for i, line in enumerate(lines) if '"listening"' in line)
        self.assertLess(down, listening)
        for _ in range(10):
            self.assertEqual(self.request(proxy, "GET", "/health")[0], 200)
        hosts = {entry["host"] for entry in proxy.access_log(count=10)}
        self.assertNotIn(dead_address, hosts)

    def test_read_only_answer_is_valid_json_whatever_the_upstream_is_called(self):
        replicas = self.start_replicas(1)
        directory = tempfile.mkdtemp(prefix="confgate-test-")
        path = write_confgate_config(directory, replicas, upstream_extra=FAST_CHECKS)
        name = 'config "service" \\ one'
        with open(path) as handle:
            text = handle.read()
        with open(path, "w") as handle:
            handle.write(text.replace("config-service", "'%s'" % name))
        proxy = Proxy(path)
        self.addCleanup(proxy.kill)
        mark = len(proxy.stderr_lines())
        replicas[0].stop()
        wait_for_log(proxy, '"to":"read_only"', after=mark)
        status, headers, body = self.request(proxy, "PUT", "/v1/kv/app", body=b"x")
        self.assertEqual((status, headers["X-Confgate-Mode"]), (503, "read-only"))
        answer = json.loads(body)
        self.assertEqual((answer["error"], answer["upstream"]), ("read_only", name))

    def test_every_replica_down_means_read_only_and_back(self):
        replicas = self.start_replicas(2)
        # Detection time alone: the read_only_after dwell has its own test (test_election.py).
        proxy = self.start_proxy(replicas, upstream_extra=FAST_CHECKS + "    read_only_after: 0s\n")
        ports = [replica.port for replica in replicas]
        mark = len(proxy.stderr_lines())
        for replica in replicas:
            replica.stop()
        read_only_after = wait_for_log(proxy, '"to":"read_only"', after=mark)
        self.assertLess(read_only_after, 2 * 0.22 + 0.2 + 1.0 * SLOW)

        started = time.time()
        status, headers, body = self.request(proxy, "GET", "/v1/kv/app")
        self.assertLess(time.time() - started, 0.5, "a read-only miss must be fast")
        self.assertEqual(status, 503)
        self.assertEqual(headers["X-Confgate-Mode"], "read-only")
        self.assertEqual(headers["Cache-Control"], "no-store")
        self.assertEqual(json.loads(body)["error"], "no_cached_copy")

        status, headers, body = self.request(proxy, "PUT", "/v1/kv/app", body=b"x")
        self.assertEqual(status, 503)
        self.assertEqual(headers["Retry-After"], "5")
        self.assertEqual(json.loads(body)["error"], "read_only")
        status, headers, _ = self.request(proxy, "GET", "/v1/kv/app?index=3&wait=30s")
        self.assertEqual((status, headers["Retry-After"]), (503, "5"))

        mark = len(proxy.stderr_lines())
        restarted = Replica("replica-1", ["--port", str(ports[0])])
        self.addCleanup(restarted.stop)
        normal_after = wait_for_log(proxy, '"to":"normal"', after=mark)
        self.assertEqual(self.request(proxy, "GET", "/health")[0], 200)
        print("\n[health] read_only after %.0f ms, normal again after %.0f ms"
              % (read_only_after * 1000, normal_after * 1000))

    def test_backups_take_over_in_failover_mode(self):
        replicas = self.start_replicas(2)
        proxy = self.start_proxy(replicas, upstream_extra=FAST_CHECKS,
                                 server_options=["", "backup: true"])
        mark = len(proxy.stderr_lines())
        replicas[0].stop()
        wait_for_log(proxy, '"to":"failover"', after=mark)
        for _ in range(5):
            status, headers, _ = self.request(proxy, "GET", "/health")
            self.assertEqual((status, headers["X-Replica-Id"]), (200, "replica-2"))


OUTLIER = """    outlier_detection:
      consecutive_5xx: 3
      consecutive_gateway_failures: 2
      base_ejection_time: %s
      max_ejection_time: 60s
      max_ejection_percent: 50
      min_available_hosts: 1
"""


class OutlierTest(ProxyTestCase, unittest.TestCase):
    def test_replica_returning_500s_is_ejected_and_reads_see_no_error(self):
        replicas = self.start_replicas(3)
        proxy = self.start_proxy(
            replicas, workers=1,
            upstream_extra=OUTLIER % "30s" +
            "    retries: {attempts: 2, on: [connect_failure, reset, timeout, 500, 502, 503, 504]}")
        replicas[0].fault("error")
        # Stop at the third 500: the ejection is decided on the control thread, and a request
        # sent before it got there could still reach the host on a loaded machine.
        for _ in range(30):
            self.assertEqual(self.request(proxy, "GET", "/health")[0], 200)
            if requests_seen(replicas[0]) == 3:
                break
        self.assertEqual(requests_seen(replicas[0]), 3)
        wait_for_log(proxy, '"reason":"consecutive_5xx"')
        for _ in range(30):
            self.assertEqual(self.request(proxy, "GET", "/health")[0], 200)
        self.assertEqual(requests_seen(replicas[0]), 3, "an ejected host got traffic")

    def test_hanging_replica_is_ejected_by_timeouts(self):
        replicas = self.start_replicas(3)
        proxy = self.start_proxy(replicas, workers=1, upstream_extra=OUTLIER % "30s" +
                                 "    timeouts: {connect: 1s, response: 300ms, total: 5s}")
        replicas[2].fault("hang")
        for _ in range(12):
            self.assertEqual(self.request(proxy, "GET", "/health")[0], 200)
        wait_for_log(proxy, '"reason":"consecutive_gateway_failures"')
        before = requests_seen(replicas[2])
        for _ in range(12):
            self.assertEqual(self.request(proxy, "GET", "/health")[0], 200)
        self.assertEqual(requests_seen(replicas[2]), before)

    def test_half_open_trial_readmits_a_recovered_host(self):
        replicas = self.start_replicas(2)
        proxy = self.start_proxy(
            replicas, workers=1,
            upstream_extra=OUTLIER % "500ms" +
            "    retries: {attempts: 2, on: [connect_failure, reset, timeout, 500]}")
        replicas[0].fault("error")
        # No request after the ejection until the host is fixed: the first one after the
        # cooldown (500 ms) is the trial, and a loaded machine can spend that long on a few
        # requests (the trial would fail, and the next cooldown be longer).
        self.assertTrue(self._drive_traffic_until(proxy, "host ejected"))
        replicas[0].fault("none")
        readmitted_after = wait_for_log(proxy, "trial request succeeded", timeout=5) \
            if self._drive_traffic_until(proxy, "trial request succeeded") else None
        self.assertIsNotNone(readmitted_after)
        seen = {self.request(proxy, "GET", "/health")[1]["X-Replica-Id"] for _ in range(10)}
        self.assertIn("replica-1", seen)

    def test_failed_trial_re_ejects_with_a_longer_cooldown(self):
        replicas = self.start_replicas(2)
        proxy = self.start_proxy(
            replicas, workers=1,
            upstream_extra=OUTLIER % "300ms" +
            "    retries: {attempts: 2, on: [connect_failure, reset, timeout, 500]}")
        replicas[0].fault("error")
        for _ in range(10):
            self.request(proxy, "GET", "/health")
        wait_for_log(proxy, '"ejection":"1"')
        self.assertTrue(self._drive_traffic_until(proxy, "\"reason\":\"trial_failed\""))
        wait_for_log(proxy, '"ejection":"2"')

    def test_single_host_pool_is_never_ejected(self):
        replicas = self.start_replicas(1)
        proxy = self.start_proxy(replicas, workers=1, upstream_extra=OUTLIER % "30s")
        replicas[0].fault("error")
        statuses = [self.request(proxy, "GET", "/health")[0] for _ in range(10)]
        self.assertEqual(statuses, [500] * 10)
        self.assertEqual(requests_seen(replicas[0]), 10)
        self.assertFalse(any("host ejected" in line for line in proxy.stderr_lines()))
        wait_for_log(proxy, "ejection limit")

    def _drive_traffic_until(self, proxy, text, timeout=5.0):
        deadline = time.time() + timeout
        while time.time() < deadline:
            self.request(proxy, "GET", "/health")
            if any(text in line for line in proxy.stderr_lines()):
                return True
            time.sleep(0.05)
        return False


if __name__ == "__main__":
    unittest.main()

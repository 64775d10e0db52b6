"""Balancing strategies, failover to backups and retries, against real replicas."""

import collections
import os
import sys
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "support"))
from confgate_harness import ProxyTestCase  # noqa: E402


def recorded(replicas, method, uri_prefix):
    """How many requests with `method` and `uri_prefix` the replicas saw, all together."""
    return sum(1 for replica in replicas for entry in replica.debug_requests()
               if entry["method"] == method and entry["uri"].startswith(uri_prefix))


class StrategyTest(ProxyTestCase, unittest.TestCase):
    def spread(self, proxy, count=300, headers=None):
        seen = collections.Counter()
        for index in range(count):
            status, reply_headers, _ = self.request(
                proxy, "GET", "/health", headers=headers(index) if headers else None)
            self.assertEqual(status, 200)
            seen[reply_headers["X-Replica-Id"]] += 1
        return seen

    def test_round_robin(self):
        replicas = self.start_replicas(3)
        proxy = self.start_proxy(replicas, workers=1)
        self.assertEqual(self.spread(proxy),
                         {"replica-1": 100, "replica-2": 100, "replica-3": 100})

    def test_weighted_round_robin(self):
        replicas = self.start_replicas(3)
        proxy = self.start_proxy(replicas, workers=1, balancer="weighted_round_robin",
                                 server_options=["weight: 3", "weight: 2", "weight: 1"])
        self.assertEqual(self.spread(proxy),
                         {"replica-1": 150, "replica-2": 100, "replica-3": 50})

    def test_random(self):
        replicas = self.start_replicas(3)
        proxy = self.start_proxy(replicas, workers=1, balancer="random",
                                 server_options=["weight: 2", "weight: 1", "weight: 1"])
        seen = self.spread(proxy)
        self.assertAlmostEqual(seen["replica-1"] / 300, 0.5, delta=0.1)
        self.assertAlmostEqual(seen["replica-2"] / 300, 0.25, delta=0.1)
        self.assertAlmostEqual(seen["replica-3"] / 300, 0.25, delta=0.1)

    def test_least_connections_rotates_ties(self):
        replicas = self.start_replicas(3)
        proxy = self.start_proxy(replicas, workers=1, balancer="least_connections")
        self.assertEqual(self.spread(proxy),
                         {"replica-1": 100, "replica-2": 100, "replica-3": 100})

    def test_p2c(self):
        replicas = self.start_replicas(3)
        proxy = self.start_proxy(replicas, workers=1, balancer="p2c")
        seen = self.spread(proxy)
        self.assertEqual(sum(seen.values()), 300)
        for replica in ("replica-1", "replica-2", "replica-3"):
            self.assertGreater(seen[replica], 50)

    def test_maglev_keeps_each_client_on_one_replica(self):
        replicas = self.start_replicas(3)
        proxy = self.start_proxy(replicas, workers=2, balancer="maglev",
                                 upstream_extra="    hash_key: header:X-Client-Id")
        owners = collections.defaultdict(set)
        for index in range(300):
            client = "client-%d" % (index % 30)
            _, headers, _ = self.request(proxy, "GET", "/health", headers={"X-Client-Id": client})
            owners[client].add(headers["X-Replica-Id"])
        self.assertTrue(all(len(replica_ids) == 1 for replica_ids in owners.values()), owners)
        used = set().union(*owners.values())
        self.assertEqual(used, {"replica-1", "replica-2", "replica-3"})


class FailoverAndRetryTest(ProxyTestCase, unittest.TestCase):
    def test_backup_is_idle_while_a_primary_serves_and_serves_when_none_does(self):
        replicas = self.start_replicas(3)
        proxy = self.start_proxy(replicas, workers=1,
                                 server_options=["", "", "backup: true"])
        seen = collections.Counter(
            self.request(proxy, "GET", "/health")[1]["X-Replica-Id"] for _ in range(30))
        self.assertEqual(seen["replica-3"], 0)
        replicas[0].stop()
        replicas[1].stop()
        for _ in range(10):
            status, headers, _ = self.request(proxy, "GET", "/health")
            self.assertEqual((status, headers["X-Replica-Id"]), (200, "replica-3"))
        status, headers, _ = self.request(proxy, "PUT", "/v1/kv/failover", body=b"1")
        self.assertEqual((status, headers["X-Replica-Id"]), (200, "replica-3"))

    def test_a_refusing_replica_costs_reads_no_error(self):
        replicas = self.start_replicas(3)
        proxy = self.start_proxy(replicas, workers=2)
        replicas[1].stop()
        for _ in range(30):
            status, headers, _ = self.request(proxy, "GET", "/health")
            self.assertEqual(status, 200)
            self.assertNotEqual(headers["X-Replica-Id"], "replica-2")

    def test_a_write_that_reached_a_resetting_replica_is_not_replayed(self):
        replicas = self.start_replicas(3)
        proxy = self.start_proxy(replicas, workers=1)
        for replica in replicas:
            replica.fault("reset")
        status, headers, _ = self.request(proxy, "PUT", "/v1/kv/once", body=b"payload")
        self.assertEqual(status, 502)
        self.assertEqual(headers["Cache-Control"], "no-store")
        self.assertEqual(recorded(replicas, "PUT", "/v1/kv/once"), 1)
        # A read is retried on the other replicas: 1 try + 2 retries.
        self.assertEqual(self.request(proxy, "GET", "/v1/kv/read")[0], 502)
        self.assertEqual(recorded(replicas, "GET", "/v1/kv/read"), 3)

    def test_reads_retry_listed_statuses_on_another_replica_but_writes_do_not(self):
        replicas = self.start_replicas(2)
        proxy = self.start_proxy(
            replicas, workers=1,
            upstream_extra="    retries: {attempts: 1, on: [connect_failure, reset, timeout, 500]}")
        replicas[0].fault("error")
        for _ in range(10):
            status, headers, _ = self.request(proxy, "GET", "/health")
            self.assertEqual((status, headers["X-Replica-Id"]), (200, "replica-2"))
        statuses = [self.request(proxy, "PUT", "/v1/kv/w", body=b"x")[0] for _ in range(4)]
        self.assertEqual(sorted(statuses), [200, 200, 500, 500])

    def test_reads_retry_a_timeout_on_another_replica(self):
        replicas = self.start_replicas(2)
        proxy = self.start_proxy(replicas, workers=1,
                                 upstream_extra="    timeouts: {connect: 1s, response: 300ms, "
                                                "total: 5s}")
        replicas[0].fault("hang")
        for _ in range(4):
            status, headers, _ = self.request(proxy, "GET", "/health")
            self.assertEqual((status, headers["X-Replica-Id"]), (200, "replica-2"))

    def test_without_retries_the_failure_reaches_the_client(self):
        replicas = self.start_replicas(2)
        proxy = self.start_proxy(replicas, workers=1,
                                 upstream_extra="    retries: {attempts: 0}")
        replicas[0].stop()
        statuses = sorted(self.request(proxy, "GET", "/health")[0] for _ in range(4))
        self.assertEqual(statuses, [200, 200, 502, 502])


if __name__ == "__main__":
    unittest.main()

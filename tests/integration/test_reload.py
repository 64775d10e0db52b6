"""Hot reload: the file watch, SIGHUP, POST /reload; state kept across reloads; no request
dropped; bad files rejected; listeners opened and closed."""

import fcntl
import json
import os
import signal
import socket
import sys
import tempfile
import threading
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "support"))
from confgate_harness import (SLOW, Proxy, ProxyTestCase, Replica, admin_call,  # noqa: E402
                              connection_refused, wait_until, write_confgate_config)


def replace_config(path, text):
    """Writes `text` to a temporary file and renames it over `path`, as deploy tools do."""
    temp = path + ".new"
    with open(temp, "w") as handle:
        handle.write(text)
    os.rename(temp, path)


def config_text(replicas, **options):
    directory = tempfile.mkdtemp(prefix="confgate-text-")
    with open(write_confgate_config(directory, replicas, **options)) as handle:
        return handle.read()


class ReloadTest(ProxyTestCase, unittest.TestCase):
    def setUp(self):
        self.replicas = self.start_replicas(2)
        self.directory = tempfile.mkdtemp(prefix="confgate-reload-")
        self.path = write_confgate_config(self.directory, self.replicas[:1], workers=2)
        self.proxy = Proxy(self.path)
        self.addCleanup(self.proxy.kill)

    def wait_for_log(self, text, after, timeout=5):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if any(text in line for line in self.proxy.stderr_lines()[after:]):
                return
            time.sleep(0.02)
        self.fail("no %r in the log:\n%s" % (text, "\n".join(self.proxy.stderr_lines())))

    def replica_ids(self, count=10):
        return {self.request(self.proxy, "GET", "/health")[1]["X-Replica-Id"]
                for _ in range(count)}

    def test_a_renamed_file_is_picked_up_by_the_watch(self):
        self.assertEqual(self.replica_ids(), {"replica-1"})
        mark = len(self.proxy.stderr_lines())
        replace_config(self.path, config_text(self.replicas, workers=2))
        self.wait_for_log("configuration reloaded", mark)
        self.assertEqual(self.replica_ids(), {"replica-1", "replica-2"})

    def test_a_bad_file_keeps_the_running_config(self):
        mark = len(self.proxy.stderr_lines())
        replace_config(self.path, config_text(self.replicas, workers=2).replace(
            "balancer: round_robin", "balancer: fastest"))
        self.wait_for_log("reload rejected", mark)
        rejected = [line for line in self.proxy.stderr_lines()[mark:] if "reload rejected" in line]
        self.assertIn("upstreams.config-service.balancer", rejected[0])
        self.assertEqual(self.replica_ids(), {"replica-1"})
        self.proxy.process.send_signal(signal.SIGHUP)
        failures = 'confgate_config_reloads_total{result="failure"} 2'
        wait_until(lambda: failures in admin_call(self.proxy, "GET", "/metrics")[1], 5 * SLOW)
        self.assertIn(failures, admin_call(self.proxy, "GET", "/metrics")[1])
        status, body = admin_call(self.proxy, "POST", "/reload")
        self.assertEqual(status, 400)
        self.assertIn("fastest", body)

    def test_sighup_reloads_and_host_state_survives(self):
        host = self.replicas[0].address
        admin_call(self.proxy, "POST", "/upstreams/config-service/hosts/%s/drain" % host)
        with open(self.path, "w") as handle:  # rewritten in place; SIGHUP does the rest
            handle.write(config_text(self.replicas, workers=2))
        mark = len(self.proxy.stderr_lines())
        self.proxy.process.send_signal(signal.SIGHUP)
        self.wait_for_log("configuration reloaded", mark)
        status = json.loads(admin_call(self.proxy, "GET", "/status")[1])
        hosts = {entry["address"]: entry for entry in status["upstreams"][0]["hosts"]}
        self.assertTrue(hosts[host]["drained"], "the reload forgot the drain")
        self.assertEqual(self.replica_ids(), {"replica-2"})

    def test_reloads_under_load_drop_no_request(self):
        replace_config(self.path, config_text(self.replicas, workers=2))
        results = []

        def load():
            import http.client
            connection = http.client.HTTPConnection("127.0.0.1", self.proxy.port, timeout=5)
            for _ in range(300):
                connection.request("GET", "/health")
                response = connection.getresponse()
                results.append((response.status, response.read()))
            connection.close()

        clients = [threading.Thread(target=load) for _ in range(3)]
        for client in clients:
            client.start()
        for _ in range(5):
            self.assertEqual(admin_call(self.proxy, "POST", "/reload")[0], 200)
            time.sleep(0.05)
        for client in clients:
            client.join(30)
        self.assertEqual(len(results), 900)
        self.assertTrue(all(result == (200, b"ok\n") for result in results))

    def test_listeners_are_opened_and_closed(self):
        text = config_text(self.replicas, workers=2)
        two_listeners = text.replace("listeners:\n  - address: 127.0.0.1:0\n",
                                     "listeners:\n  - address: 127.0.0.1:0\n"
                                     "  - address: 127.0.0.2:0\n")
        mark = len(self.proxy.stderr_lines())
        replace_config(self.path, two_listeners)
        self.wait_for_log("configuration reloaded", mark)
        added = [json.loads(line)["address"] for line in self.proxy.stderr_lines()[mark:]
                 if '"msg":"listening"' in line]
        self.assertEqual(len(added), 1)
        port = int(added[0].rsplit(":", 1)[1])
        with socket.create_connection(("127.0.0.2", port), timeout=5) as sock:
            sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            self.assertIn(b"ok\n", sock.recv(65536))
        mark = len(self.proxy.stderr_lines())
        replace_config(self.path, text)
        self.wait_for_log("configuration reloaded", mark)
        # Each worker closes the removed listener when it adopts the new configuration.
        self.assertTrue(wait_until(lambda: connection_refused(port, "127.0.0.2"), 2 * SLOW),
                        "the removed listener still accepts connections")
        self.assertEqual(self.request(self.proxy, "GET", "/health")[0], 200)


class ReloadUnderLoadTest(ProxyTestCase, unittest.TestCase):
    def test_hosts_removed_added_and_reweighted_under_load_with_a_parked_watch(self):
        replicas = self.start_replicas(4)
        directory = tempfile.mkdtemp(prefix="confgate-reload-")
        outlier = ("    outlier_detection: {consecutive_5xx: 2, consecutive_gateway_failures: 2,\n"
                   "                        base_ejection_time: 60s, max_ejection_time: 120s,\n"
                   "                        max_ejection_percent: 50}\n")
        path = write_confgate_config(directory, replicas[:3], workers=2,
                                     balancer="weighted_round_robin", upstream_extra=outlier)
        proxy = Proxy(path)
        self.addCleanup(proxy.kill)
        # Eject replica-3 (it answers 500s); it must stay ejected through the reload.
        replicas[2].fault("error")
        for _ in range(12):
            self.request(proxy, "GET", "/health")
        ejected_host = replicas[2].address

        def ejected():
            status = json.loads(admin_call(proxy, "GET", "/status")[1])
            return {h["address"]: h for h in status["upstreams"][0]["hosts"]}[ejected_host][
                "ejected"]

        # The control thread decides the ejection after the worker reports the second 500.
        self.assertTrue(wait_until(ejected, 5 * SLOW))

        self.request(proxy, "PUT", "/v1/kv/watched", body=b"v1")
        index = self.request(proxy, "GET", "/v1/kv/watched")[1]["X-Config-Index"]
        watch_result = {}

        def watch():
            watch_result["reply"] = self.request(
                proxy, "GET", "/v1/kv/watched?index=%s&wait=2s" % index, timeout=10)

        watcher = threading.Thread(target=watch)
        watcher.start()
        failures = []
        stop = threading.Event()

        def load():
            import http.client
            connection = http.client.HTTPConnection("127.0.0.1", proxy.port, timeout=5)
            while not stop.is_set():
                try:
                    connection.request("GET", "/v1/kv/watched")
                    response = connection.getresponse()
                    response.read()
                    if response.status not in (200, 404):
                        failures.append(response.status)
                except OSError as error:
                    failures.append(repr(error))
                    connection = http.client.HTTPConnection("127.0.0.1", proxy.port, timeout=5)
            connection.close()

        clients = [threading.Thread(target=load) for _ in range(2)]
        for client in clients:
            client.start()
        time.sleep(0.3)
        # Remove replica-1, add replica-4, change replica-2's weight, keep replica-3.
        mark = len(proxy.stderr_lines())
        replace_config(path, config_text(
            replicas[1:], workers=2, balancer="weighted_round_robin", upstream_extra=outlier,
            server_options=["weight: 3", "", ""]))
        reloaded = wait_until(lambda: any("configuration reloaded" in line
                                          for line in proxy.stderr_lines()[mark:]), 10 * SLOW)
        time.sleep(0.3)  # load on the reloaded configuration too
        stop.set()
        for client in clients:
            client.join(10)
        watcher.join(10)
        self.assertTrue(reloaded, "the file watch did not reload")
        self.assertEqual(failures, [])
        # The hold ran out normally (404 when the watch landed on a replica without the key).
        self.assertIn(watch_result["reply"][0], (200, 404))
        status = json.loads(admin_call(proxy, "GET", "/status")[1])
        hosts = {h["address"]: h for h in status["upstreams"][0]["hosts"]}
        self.assertEqual(set(hosts), {r.address for r in replicas[1:]})
        self.assertTrue(hosts[ejected_host]["ejected"], "the reload forgot the ejection")
        self.assertEqual(hosts[replicas[1].address]["weight"], 3)


class DnsDiscoveryTest(ProxyTestCase, unittest.TestCase):
    HOSTS = "/etc/hosts"

    def edit_hosts(self, edit):
        """Rewrites /etc/hosts to `edit(lines)`, under a lock: the same test of another build's
        suite may be editing its own name in at the same time, and neither may undo the other's."""
        with open(os.path.join(tempfile.gettempdir(), "confgate-etc-hosts.lock"), "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            with open(self.HOSTS) as handle:
                lines = handle.read().splitlines(True)
            if lines and not lines[-1].endswith("\n"):
                lines[-1] += "\n"
            with open(self.HOSTS, "w") as handle:
                handle.writelines(edit(lines))

    def test_a_name_gaining_and_losing_addresses(self):
        if not os.access(self.HOSTS, os.W_OK):
            self.skipTest("needs a writable /etc/hosts (CI runs as root)")
        name = "confgate-test-%d.invalid" % os.getpid()
        self.addCleanup(self.edit_hosts, lambda lines: [line for line in lines if name not in line])
        first = self.start_replicas(1)[0]
        second = Replica("replica-2", ["--host", "127.0.0.2", "--port", str(first.port)])
        self.addCleanup(second.stop)
        self.edit_hosts(lambda lines: lines + ["127.0.0.1 %s\n" % name])
        directory = tempfile.mkdtemp(prefix="confgate-dns-")
        text = config_text([first], workers=1).replace(
            "- {address: 127.0.0.1:%d}" % first.port, "- {dns: '%s:%d'}" % (name, first.port)
        ).replace("balancer: round_robin", "balancer: round_robin\n    dns_refresh: 200ms")
        path = os.path.join(directory, "confgate.yaml")
        with open(path, "w") as handle:
            handle.write(text)
        proxy = Proxy(path)
        self.addCleanup(proxy.kill)
        ids = lambda: {self.request(proxy, "GET", "/health")[1]["X-Replica-Id"] for _ in range(6)}
        self.assertEqual(ids(), {"replica-1"})
        self.edit_hosts(lambda lines: lines + ["127.0.0.2 %s\n" % name])
        deadline = time.time() + 5
        while ids() != {"replica-1", "replica-2"} and time.time() < deadline:
            time.sleep(0.1)
        self.assertEqual(ids(), {"replica-1", "replica-2"})
        self.edit_hosts(lambda lines: [line for line in lines
                                       if line != "127.0.0.1 %s\n" % name])
        deadline = time.time() + 5
        while ids() != {"replica-2"} and time.time() < deadline:
            time.sleep(0.1)
        self.assertEqual(ids(), {"replica-2"})

    def test_dns_servers_are_resolved_into_hosts(self):
        replica = self.start_replicas(1)[0]
        directory = tempfile.mkdtemp(prefix="confgate-dns-")
        text = config_text([replica], workers=1).replace(
            "- {address: 127.0.0.1:%d}" % replica.port,
            "- {dns: 'localhost:%d'}" % replica.port).replace(
            "balancer: round_robin", "balancer: round_robin\n    dns_refresh: 200ms")
        path = os.path.join(directory, "confgate.yaml")
        with open(path, "w") as handle:
            handle.write(text)
        proxy = Proxy(path)
        self.addCleanup(proxy.kill)
        for _ in range(5):
            self.assertEqual(self.request(proxy, "GET", "/health")[0], 200)
        status = json.loads(admin_call(proxy, "GET", "/status")[1])
        addresses = {host["address"] for host in status["upstreams"][0]["hosts"]}
        self.assertIn("127.0.0.1:%d" % replica.port, addresses)
        time.sleep(1.0)
        # The blocking start-up lookup and evdns may disagree once (e.g. on ::1 for localhost);
        # after that, refreshes with the same answer change nothing.
        changes = [line for line in proxy.stderr_lines() if "DNS addresses changed" in line]
        self.assertLessEqual(len(changes), 1)
        self.assertEqual(self.request(proxy, "GET", "/health")[0], 200)


if __name__ == "__main__":
    unittest.main()

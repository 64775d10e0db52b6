"""A real 3-member etcd cluster on 127.0.0.1 (Debian's etcd-server), for integration tests.

Ports are ephemeral (bound to port 0, then released), data lives in a temporary directory
(on tmpfs where there is one: every write is fsynced), and raft timings are short so the
cluster forms, elects and recovers in well under a second."""

import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request

ETCD_BIN = shutil.which("etcd")
ETCDCTL_BIN = shutil.which("etcdctl")


def etcd_missing_reason():
    """None when etcd and etcdctl are installed, else what is missing."""
    missing = [name for name, path in (("etcd", ETCD_BIN), ("etcdctl", ETCDCTL_BIN)) if not path]
    if not missing:
        return None
    return ("%s not installed (Debian packages etcd-server and etcd-client; scripts/setup.sh "
            "installs them)" % " and ".join(missing))


def _free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class EtcdMember:
    def __init__(self, name, data_dir):
        self.name = name
        self.data_dir = data_dir
        self.client_port = _free_port()
        self.peer_port = _free_port()
        self.process = None
        self.log = None

    @property
    def address(self):
        return "127.0.0.1:%d" % self.client_port

    @property
    def client_url(self):
        return "http://" + self.address

    @property
    def peer_url(self):
        return "http://127.0.0.1:%d" % self.peer_port

    def start(self, initial_cluster, token):
        # A restart reuses the data dir, where etcd ignores the initial-cluster flags.
        self.log = open(os.path.join(os.path.dirname(self.data_dir), self.name + ".log"), "ab")
        self.process = subprocess.Popen(
            [ETCD_BIN, "--name", self.name, "--data-dir", self.data_dir,
             "--listen-client-urls", self.client_url, "--advertise-client-urls", self.client_url,
             "--listen-peer-urls", self.peer_url, "--initial-advertise-peer-urls", self.peer_url,
             "--initial-cluster", initial_cluster, "--initial-cluster-state", "new",
             "--initial-cluster-token", token, "--enable-v2=true",
             "--heartbeat-interval", "25", "--election-timeout", "250",
             "--logger", "zap", "--log-level", "error"],
            stdout=self.log, stderr=subprocess.STDOUT)

    def running(self):
        return self.process is not None and self.process.poll() is None

    def kill(self):
        if self.running():
            self.process.send_signal(signal.SIGKILL)
            self.process.wait()
        if self.log is not None:
            self.log.close()
            self.log = None

    def healthy(self):
        try:
            with urllib.request.urlopen(self.client_url + "/health", timeout=1) as reply:
                return json.loads(reply.read()).get("health") == "true"
        except (OSError, ValueError):
            return False

    def is_leader(self):
        try:
            with urllib.request.urlopen(self.client_url + "/v2/stats/self", timeout=1) as reply:
                return json.loads(reply.read()).get("state") == "StateLeader"
        except (OSError, ValueError):
            return False


class EtcdCluster:
    def __init__(self, size=3):
        base = "/dev/shm" if os.path.isdir("/dev/shm") else None
        self.directory = tempfile.mkdtemp(prefix="confgate-etcd-", dir=base)
        self.token = "confgate-test-%d" % os.getpid()
        self.members = [EtcdMember("m%d" % (index + 1),
                                   os.path.join(self.directory, "m%d" % (index + 1)))
                        for index in range(size)]
        self.initial_cluster = ",".join("%s=%s" % (member.name, member.peer_url)
                                        for member in self.members)

    def start(self, timeout=20.0):
        for member in self.members:
            member.start(self.initial_cluster, self.token)
        self.wait_healthy(timeout)

    def wait_healthy(self, timeout=20.0, members=None):
        members = members or self.members
        deadline = time.time() + timeout
        while time.time() < deadline:
            if all(member.healthy() for member in members):
                return
            dead = [member.name for member in members if not member.running()]
            if dead:
                raise RuntimeError("etcd member(s) %s exited:\n%s" % (dead, self.logs()))
            time.sleep(0.05)
        raise RuntimeError("etcd cluster not healthy after %.0f s:\n%s" % (timeout, self.logs()))

    def restart(self, member, timeout=20.0):
        member.start(self.initial_cluster, self.token)
        self.wait_healthy(timeout, [member])

    def leader(self):
        for member in self.members:
            if member.is_leader():
                return member
        return None

    def follower(self):
        """A running member that is not the leader (once a leader is known)."""
        deadline = time.time() + 5
        while time.time() < deadline:
            leader = self.leader()
            if leader is not None:
                return next(member for member in self.members
                            if member is not leader and member.running())
            time.sleep(0.05)
        raise RuntimeError("no etcd leader")

    def logs(self):
        text = []
        for member in self.members:
            path = os.path.join(self.directory, member.name + ".log")
            if os.path.exists(path):
                with open(path, "rb") as handle:
                    text.append("--- %s\n%s" % (member.name,
                                                 handle.read()[-2000:].decode("utf-8", "replace")))
        return "\n".join(text)

    def stop(self):
        for member in self.members:
            member.kill()
        shutil.rmtree(self.directory, ignore_errors=True)

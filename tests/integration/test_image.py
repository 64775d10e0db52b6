"""The container image: .dockerignore keeps host build trees out of the context, the Dockerfile
ships a stripped binary (debug information split off) in a small non-root final stage with the
libraries the binary links, and scripts/image.sh picks docker, podman or buildah (checked with
stand-in commands on PATH: no image is built)."""

import fnmatch
import os
import re
import shutil
import stat
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "support"))
from confgate_harness import CONFGATE_BIN, SOURCE_DIR  # noqa: E402


def read(*parts):
    with open(os.path.join(SOURCE_DIR, *parts)) as handle:
        return handle.read()


def stages(dockerfile):
    """[(stage name or None, its text)], split at each FROM."""
    parts = [part for part in re.split(r"^(?=FROM )", dockerfile, flags=re.M)
             if part.startswith("FROM ")]
    return [(re.match(r"FROM \S+(?: AS (\S+))?", part).group(1), part) for part in parts]


def ignored(patterns, path):
    """Whether a .dockerignore (its patterns, Go filepath.Match plus **) leaves `path` out."""
    result = False
    for pattern in patterns:
        negate = pattern.startswith("!")
        pattern = pattern.lstrip("!").strip("/")
        parts = path.split("/")
        # A pattern that matches a directory leaves out everything below it.
        prefixes = ["/".join(parts[:i]) for i in range(1, len(parts) + 1)]
        regex = fnmatch.translate(pattern).replace(".*", "[^/]*")
        regex = regex.replace("[^/]*[^/]*/", "(?:.*/)?")  # **/ is any number of directories
        if any(re.match(regex, prefix) for prefix in prefixes):
            result = not negate
    return result


class DockerignoreTest(unittest.TestCase):
    def test_host_build_trees_stay_out_and_sources_go_in(self):
        patterns = [line.strip() for line in read(".dockerignore").splitlines()
                    if line.strip() and not line.startswith("#")]
        for path in ("build/CMakeCache.txt", "build/confgate", "build-asan/confgate",
                     "build-tsan/CMakeCache.txt", "build-clang/x.o", ".git/HEAD", ".git",
                     ".cache/clangd/index", "tests/integration/__pycache__/x.pyc",
                     "compile_commands.json"):
            self.assertTrue(ignored(patterns, path), path)
        # What the image's build reads stays in.
        for path in ("CMakeLists.txt", "cmake/install.cmake", "src/main.cc",
                     "include/confgate/server/server.h", "examples/config-service/CMakeLists.txt",
                     "conf/confgate.yaml", "LICENSE", "docker/Dockerfile"):
            self.assertFalse(ignored(patterns, path), path)
        for path in re.findall(r"^COPY (?!--from)(\S+)", read("docker", "Dockerfile"), re.M):
            if path != ".":
                self.assertFalse(ignored(patterns, path), path)


class DockerfileTest(unittest.TestCase):
    def setUp(self):
        all_stages = stages(read("docker", "Dockerfile"))
        self.stages = {name: text for name, text in all_stages if name}
        self.final = all_stages[-1][1]

    def test_binary_is_stripped_with_its_debug_information_split_off(self):
        build = self.stages["build"]
        self.assertIn("objcopy --only-keep-debug /build/confgate /out/confgate.debug", build)
        self.assertRegex(build, r"strip --strip-unneeded -o /out/confgate /build/confgate")
        self.assertIn("--add-gnu-debuglink=/out/confgate.debug /out/confgate", build)
        # The build tree is outside the copied sources.
        self.assertIn("-B /build", build)
        self.assertIn("COPY --from=build /out/confgate.debug", self.stages["debug"])

    def test_final_stage_is_small_and_non_root(self):
        self.assertTrue(self.final.startswith("FROM debian:bookworm-slim"))
        copies = re.findall(r"^COPY --from=(\S+) (\S+)", self.final, re.M)
        self.assertEqual(copies, [("build", "/out/confgate"), ("build", "/out/config-service")])
        self.assertNotRegex(self.final, r"-dev\b|build-essential|cmake")
        user = re.findall(r"^USER (\S+)$", self.final, re.M)
        self.assertEqual(len(user), 1)
        uid = user[0].split(":")[0]
        self.assertTrue(uid.isdigit() and int(uid) != 0, user)
        self.assertIn("--uid %s" % uid, self.final)

    def test_final_stage_installs_every_library_the_binary_links(self):
        packages = set(re.findall(r"\b(lib[a-z0-9.+-]+|curl|ca-certificates)\b",
                                  self.final.split("rm -rf")[0]))
        ldd = shutil.which("ldd")
        dpkg = shutil.which("dpkg")
        if ldd is None or dpkg is None:
            self.skipTest("ldd and dpkg are needed to map libraries to Debian packages")
        output = subprocess.run([ldd, CONFGATE_BIN], capture_output=True, text=True,
                                timeout=30).stdout
        if "sanitizer" in output or "libasan" in output or "libtsan" in output:
            self.skipTest("a sanitizer build links libraries the release image does not ship")
        # In debian:bookworm-slim already.
        base = {"libc6", "libgcc-s1", "libstdc++6", "zlib1g"}
        libraries = re.findall(r"=> (/\S+)", output)
        candidates = {}
        for library in libraries:
            real = os.path.realpath(library)
            for path in (real, library, re.sub(r"^/usr/lib/", "/lib/", real),
                         re.sub(r"^/lib/", "/usr/lib/", real)):
                candidates.setdefault(path, library)
        # One dpkg run for all of them (it is slow to start); paths it does not know are skipped.
        result = subprocess.run([dpkg, "-S", *candidates], capture_output=True, text=True,
                                timeout=120)
        owners = {}
        for line in result.stdout.splitlines():
            owner, path = line.split(": ", 1)
            owners[candidates[path]] = owner.split(":")[0]
        self.assertEqual(set(owners), set(libraries))
        for library, owner in owners.items():
            if owner not in base:
                self.assertIn(owner, packages, library)


class ImageScriptTest(unittest.TestCase):
    """scripts/image.sh with stand-ins for docker, podman and buildah: each records how it was
    called; a stand-in docker's daemon answers `docker info` or not."""

    def run_script(self, tools, docker_daemon=True, env=None, args=()):
        directory = tempfile.mkdtemp(prefix="confgate-image-")
        self.addCleanup(shutil.rmtree, directory)
        log = os.path.join(directory, "calls")
        for name in ("bash", "dirname"):
            os.symlink(shutil.which(name), os.path.join(directory, name))
        for tool in tools:
            script = os.path.join(directory, tool)
            with open(script, "w") as handle:
                handle.write("#!%s\n" % shutil.which("bash"))
                if tool == "docker":
                    handle.write('if [[ $1 == info ]]; then exit %d; fi\n'
                                 % (0 if docker_daemon else 1))
                handle.write('echo "$(basename "$0") $* @ $PWD" >> %s\n' % log)
            os.chmod(script, stat.S_IRWXU)
        os.symlink(shutil.which("basename"), os.path.join(directory, "basename"))
        environment = {"PATH": directory}
        environment.update(env or {})
        result = subprocess.run([os.path.join(SOURCE_DIR, "scripts", "image.sh"), *args],
                                capture_output=True, text=True, timeout=30, env=environment)
        calls = []
        if os.path.exists(log):
            with open(log) as handle:
                calls = handle.read().splitlines()
        return result, calls

    def expect(self, calls, command):
        source = os.path.realpath(SOURCE_DIR)
        self.assertEqual(calls, ["%s @ %s" % (command, source)])

    def test_docker_with_its_daemon_first(self):
        result, calls = self.run_script(["docker", "podman", "buildah"])
        self.assertEqual(result.returncode, 0, result.stderr)
        self.expect(calls, "docker build -f docker/Dockerfile -t confgate:latest .")

    def test_podman_when_dockers_daemon_is_down(self):
        result, calls = self.run_script(["docker", "podman"], docker_daemon=False)
        self.assertEqual(result.returncode, 0, result.stderr)
        self.expect(calls, "podman build -f docker/Dockerfile -t confgate:latest .")

    def test_buildah_alone(self):
        result, calls = self.run_script(["buildah"], args=["reg.example/confgate:1", "--pull"])
        self.assertEqual(result.returncode, 0, result.stderr)
        self.expect(calls, "buildah bud -f docker/Dockerfile -t reg.example/confgate:1 --pull .")

    def test_docker_without_daemon_and_nothing_else_reports_its_own_error(self):
        result, calls = self.run_script(["docker"], docker_daemon=False)
        self.expect(calls, "docker build -f docker/Dockerfile -t confgate:latest .")

    def test_chosen_tool(self):
        result, calls = self.run_script(["docker", "podman"], env={"CONFGATE_IMAGE_TOOL": "podman"})
        self.assertEqual(result.returncode, 0, result.stderr)
        self.expect(calls, "podman build -f docker/Dockerfile -t confgate:latest .")

    def test_no_tool(self):
        result, calls = self.run_script([])
        self.assertEqual(result.returncode, 1)
        self.assertIn("install docker, podman or buildah", result.stderr)
        self.assertEqual(calls, [])


if __name__ == "__main__":
    unittest.main()

"""Docker-backend pieces that need no engine: profile, sources parsing, tars, retry policy."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
import requests

from ptebench.sandbox.base import Resources, SandboxSpec
from ptebench.sandbox.docker import default_max_sandboxes
from ptebench.sandbox.engine import is_transient, reroot_tar, tar_one, untar_one
from ptebench.sandbox.images import apt_debian_source
from ptebench.sandbox.profile import container_kwargs, describe

REPO = Path(__file__).resolve().parents[2]


def test_default_profile_is_hardened() -> None:
    spec = SandboxSpec(resources=Resources(cpus=0.5, memory_mb=300, pids=50, disk_mb=10))
    kw = container_kwargs(spec, {"ptebench.run": "r"}, "vol")
    assert kw["network_mode"] == "none" and kw["cap_drop"] == ["ALL"]
    assert kw["security_opt"] == ["no-new-privileges:true"] and kw["privileged"] is False
    assert kw["mem_limit"] == kw["memswap_limit"] == "300m"
    assert (kw["pids_limit"], kw["nano_cpus"], kw["read_only"], kw["init"]) == (50, 5 * 10**8, True, True)
    assert kw["user"] == "root" and "nosuid" in kw["tmpfs"]["/tmp"]  # PID 1, not the agent
    assert container_kwargs(spec, {}, "vol", command=["server"])["user"] == "agent"
    assert not any("docker.sock" in str(v) for v in kw.values())
    prof = describe(kw)
    assert prof["seccomp"] == "default" and prof["host_reachable"] is False


def test_network_is_relaxed_only_as_the_spec_says() -> None:
    kw = container_kwargs(SandboxSpec(network="internal"), {}, "vol", network="net1")
    assert kw["network"] == "net1" and "network_mode" not in kw
    with pytest.raises(ValueError, match="internal"):
        container_kwargs(SandboxSpec(network="internal"), {}, "vol")
    full = container_kwargs(SandboxSpec(network="full"), {}, "vol")
    assert "network_mode" not in full and "network" not in full


def test_task_tmpfs_options_win() -> None:
    kw = container_kwargs(SandboxSpec(tmpfs={"/scratch": "size=8m,mode=0700"}), {}, "v")
    assert kw["tmpfs"]["/scratch"] == "size=8m,mode=0700,nosuid,nodev"


def test_apt_sources_deb822_and_one_line(tmp_path: Path) -> None:
    d = tmp_path / "sources.list.d"
    d.mkdir()
    (d / "a.sources").write_text(
        "Types: deb\nURIs: https://deb.nodesource.com/node_20.x\nSuites: nodistro\n\n"
        "Types: deb\nURIs: http://mirror.example/debian-security\nSuites: bookworm-security\n\n"
        "Types: deb\nURIs: http://mirror.example/debian/\nSuites: bookworm bookworm-updates\n")
    assert apt_debian_source(tmp_path, "bookworm") == ("http://mirror.example/debian", "bookworm")
    (d / "a.sources").unlink()
    (tmp_path / "sources.list").write_text("deb [arch=amd64] http://other.example/debian trixie main\n")
    assert apt_debian_source(tmp_path, "trixie") == ("http://other.example/debian", "trixie")


def test_no_debian_source_is_a_user_error(tmp_path: Path) -> None:
    from ptebench.errors import UserError

    with pytest.raises(UserError, match="no Debian archive"):
        apt_debian_source(tmp_path)


def test_tar_helpers_round_trip() -> None:
    data = bytes(range(256))
    raw = tar_one("a/b/f.bin", data, 0o600, 1000, 1001, ["a", "a/b"])
    with tarfile.open(fileobj=io.BytesIO(raw)) as tf:
        members = tf.getmembers()
    assert [(m.name, m.uid, m.gid) for m in members] == [
        ("a", 1000, 1001), ("a/b", 1000, 1001), ("a/b/f.bin", 1000, 1001)]
    assert members[-1].mode == 0o600
    wrapped = tar_one("top/x", b"x", 0o644, 0, 0, ["top"])
    with tarfile.open(fileobj=io.BytesIO(reroot_tar(wrapped))) as tf:
        assert tf.getnames() == ["x"]
    assert untar_one([tar_one("f", data, 0o644, 0, 0, [])], "f") == data
    with pytest.raises(IsADirectoryError):
        untar_one([tar_one("d/f", data, 0o644, 0, 0, ["d"])], "d")


def test_transient_errors_are_retried_others_not() -> None:
    assert is_transient(requests.exceptions.ConnectionError("reset"))
    r502 = requests.Response()
    r502.status_code = 502
    assert is_transient(requests.exceptions.HTTPError("bad gateway", response=r502))
    r404 = requests.Response()
    r404.status_code = 404
    assert not is_transient(requests.exceptions.HTTPError("no such container", response=r404))
    assert not is_transient(ValueError("bug"))


def test_max_sandboxes_default_follows_the_machine() -> None:
    n = default_max_sandboxes()
    assert 1 <= n <= 4 * (os.cpu_count() or 1)
    assert default_max_sandboxes(Resources(memory_mb=1 << 20)) == 1


def test_sandbox_package_imports_without_the_docker_sdk() -> None:
    code = (
        "import sys, asyncio; sys.modules['docker'] = None\n"
        "from ptebench import registry\n"
        "from ptebench.errors import MissingExtra\n"
        "from ptebench.sandbox.base import SandboxSpec\n"
        "p = registry.get('sandbox', 'docker')()\n"
        "async def main():\n"
        "    try:\n"
        "        async with p.acquire(SandboxSpec(), {}):\n"
        "            pass\n"
        "    except MissingExtra as e:\n"
        "        print('missing:', e)\n"
        "asyncio.run(main())\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                       env={**os.environ, "PYTHONPATH": str(REPO)}, check=False)
    assert r.returncode == 0, r.stderr
    assert "pip install 'ptebench[docker]'" in r.stdout


def test_the_exec_server_is_the_entrypoint_so_it_is_pid_1() -> None:
    """An image's ENTRYPOINT would otherwise run in front of the server (then not PID 1,
    so signals and /proc/1 would reach the wrong process)."""
    kw = container_kwargs(SandboxSpec(), {}, "vol", command=["server", "-x"])
    assert kw["entrypoint"] == ["server", "-x"] and kw["command"] == []
    assert "entrypoint" not in container_kwargs(SandboxSpec(), {}, "vol")


def test_exec_path_choice_follows_the_image() -> None:
    from ptebench.sandbox.pool import ImageInfo

    ok = ImageInfo(1000, 1000, b"", python="3.11.2", python_why="")
    assert ok.exec_server("auto") == (True, "auto: the image runs it (python3 3.11.2)")
    assert ok.exec_server(False)[0] is False
    assert ImageInfo(1000, 1000, b"", python=None, python_why="no python3").exec_server(
        "auto") == (False, "auto: the image cannot run the exec server (no python3)")
    assert ImageInfo(1000, 1000, b"", entrypoint=["/init"], python="3.11").exec_server(
        "auto")[0] is False
    assert ImageInfo(1000, 1000, b"", exec_label="false", python="3.11").exec_server(
        "auto")[0] is False
    assert ImageInfo(1000, 1000, b"", python=None).exec_server(True)[0] is True


def test_only_read_only_roots_without_services_are_recycled() -> None:
    from ptebench.sandbox.base import ServiceSpec
    from ptebench.sandbox.docker import DockerProvider

    p = DockerProvider()  # connects lazily: no engine needed
    assert p.may_recycle(SandboxSpec(reuse=True))
    assert not p.may_recycle(SandboxSpec(reuse=True, read_only_root=False))
    assert not p.may_recycle(SandboxSpec(reuse=True, services={"db": ServiceSpec()}))
    assert not p.may_recycle(SandboxSpec())
    assert not DockerProvider(recycle=False).may_recycle(SandboxSpec(reuse=True))


def test_fingerprint_difference_names_what_differs() -> None:
    from ptebench.sandbox.recycle import difference

    a = {"procs": [[1, "python3", "5"]], "mounts": [], "ipc": {},
         "paths": {"/tmp": [[".", 17407, 0, 0, 0, "", "", []]]}}
    assert difference(a, a) is None
    b = {**a, "paths": {"/tmp": [*a["paths"]["/tmp"], ["./left", 33188, 0, 0, 5, "", "x", []]]}}
    assert "./left" in (difference(a, b) or "")
    c = {**a, "procs": [[1, "python3", "5"], [9, "sleep", "77"]]}
    assert "sleep" in (difference(a, c) or "")

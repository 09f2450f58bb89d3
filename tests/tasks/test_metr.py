"""METR Task Standard import: static checks on the host, everything else in Docker."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from ptebench import registry
from ptebench.errors import ConfigError
from ptebench.sandbox.base import SandboxSpec
from ptebench.tasks.base import TaskInstance, TaskOptions
from ptebench.tasks.metr import MetrError, MetrFamily, load_metr_family
from tests.tasks.docker_sandbox import docker_sandbox

EXAMPLES = Path(__file__).resolve().parents[2] / "ptebench" / "tasks" / "metr_examples"

GOOD_MODULE = """
class TaskFamily:
    standard_version = "0.3.0"

    @staticmethod
    def get_tasks():
        return {"t": {}}

    @staticmethod
    def get_instructions(t):
        return "do it"

    @staticmethod
    def score(t, submission):
        return 1.0
"""


def _family(tmp_path: Path, name: str, module: str, manifest: str | None = None) -> Path:
    d = tmp_path / name
    d.mkdir()
    (d / f"{name}.py").write_text(textwrap.dedent(module))
    if manifest is not None:
        (d / "manifest.yaml").write_text(textwrap.dedent(manifest))
    return d


# -- static checks (no Docker, nothing executed) ---------------------------------------------


def test_a_well_formed_family_loads_without_running_it(tmp_path: Path) -> None:
    fam = load_metr_family(_family(tmp_path, "fine", GOOD_MODULE + "\nraise SystemExit('ran')\n"))
    assert fam.name == "fine"


def test_missing_methods_are_named_with_the_file(tmp_path: Path) -> None:
    module = GOOD_MODULE.replace("def get_instructions", "def instructions").replace(
        'standard_version = "0.3.0"', "pass"
    )
    d = _family(tmp_path, "broken", module)
    with pytest.raises(ConfigError) as e:
        load_metr_family(d)
    msg = str(e.value)
    assert str(d / "broken.py") in msg
    assert "get_instructions()" in msg and "standard_version" in msg


def test_missing_module_class_and_syntax_errors(tmp_path: Path) -> None:
    empty = tmp_path / "empty_family"
    empty.mkdir()
    with pytest.raises(ConfigError, match=r"empty_family\.py: missing"):
        load_metr_family(empty)
    with pytest.raises(ConfigError, match="no class TaskFamily"):
        load_metr_family(_family(tmp_path, "noclass", "x = 1\n"))
    with pytest.raises(ConfigError, match=r"syntaxerr\.py:1: syntax error"):
        load_metr_family(_family(tmp_path, "syntaxerr", "class TaskFamily(:\n"))
    with pytest.raises(ConfigError, match="no such METR family folder"):
        load_metr_family(tmp_path / "nowhere")


def test_bad_manifest_names_file_and_field(tmp_path: Path) -> None:
    manifest = """
    tasks:
      t:
        resources: {cpus: 1, memroy_gb: 2}
    """
    d = _family(tmp_path, "badmanifest", GOOD_MODULE, manifest)
    with pytest.raises(ConfigError) as e:
        load_metr_family(d)
    assert f"{d / 'manifest.yaml'}: tasks.t.resources.memroy_gb" in str(e.value)
    (d / "manifest.yaml").write_text("tasks: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_metr_family(d)


def test_manifest_resources_map_to_the_sandbox() -> None:
    fam = MetrFamily(EXAMPLES / "secret_note")
    res = fam._resources("plain")
    assert (res.cpus, res.memory_mb) == (0.5, 256)


# -- end to end in Docker ----------------------------------------------------------------------

SOLUTIONS = {
    ("secret_note", "plain"): "grep -rhoP 'access code: \\K\\S+' /home/agent/notes",
    ("secret_note", "base64"): "grep -rhoP 'access code: \\K\\S+' /home/agent/notes | base64 -d",
    ("csv_stats", "sum"): "python3 -c \"import csv;print(sum(int(r['value']) for r in csv.DictReader(open('data.csv'))))\" > answer.txt; echo done",
    ("csv_stats", "max"): "python3 -c \"import csv;print(max(int(r['value']) for r in csv.DictReader(open('data.csv'))))\" > answer.txt; echo done",
}


@pytest.mark.docker
@pytest.mark.parametrize("name", ["secret_note", "csv_stats"])
async def test_example_family_end_to_end(name: str) -> None:
    fam = load_metr_family(EXAMPLES / name)
    instances = fam.instances(TaskOptions())
    assert {i.id for i in instances} == {t for (f, t) in SOLUTIONS if f == name} | (
        {"report"} if name == "csv_stats" else set()
    )
    for inst in instances:
        spec = fam.sandbox_spec(inst)
        assert spec is not None and spec.network == "none" and spec.image.startswith("ptebench/metr-")
        async with docker_sandbox(spec) as box:
            await fam.setup(box, inst)
            owners = await box.exec("find /home/agent ! -user agent | wc -l", timeout=30)
            assert owners.stdout.strip() == "0", "start() output was not handed to the agent"
            peek = await box.exec("cat /root/expected_code /root/expected.json", timeout=30)
            assert not peek.ok, "the agent can read the scorer's secret"
            if (name, inst.id) not in SOLUTIONS:
                score = await fam.score(box, inst, "done")
                assert score.value is None and score.explanation == "needs manual scoring"
                continue
            # Nothing done, empty submission: 0. Then the scripted solution: 1.
            empty = await fam.score(box, inst, "")
            assert empty.value == 0.0, empty.explanation
            run = await box.exec(SOLUTIONS[(name, inst.id)], timeout=60)
            assert run.ok, run.stderr
            submission = run.stdout.strip().splitlines()[-1]
            score = await fam.score(box, inst, submission)
            assert score.value == 1.0, score.explanation


@pytest.mark.docker
async def test_intermediate_and_aggregate_scores_run_in_the_sandbox() -> None:
    fam = load_metr_family(EXAMPLES / "csv_stats")
    (inst,) = fam.instances(TaskOptions(ids=["sum"]))
    spec = fam.sandbox_spec(inst)
    assert spec is not None
    async with docker_sandbox(spec) as box:
        await fam.setup(box, inst)
        before = await fam.intermediate_score(box, inst)
        await box.exec("echo 1 > answer.txt", timeout=30)
        after = await fam.intermediate_score(box, inst)
        assert isinstance(before, dict) and isinstance(after, dict)
        assert (before["score"], after["score"]) == (0.0, 1.0)
        assert await fam.aggregate_scores(box, inst, [0.0, 0.5, 0.25]) == 0.5


@pytest.mark.docker
async def test_permissions_aux_vms_and_failing_start(tmp_path: Path) -> None:
    module = """
    class TaskFamily:
        standard_version = "0.3.0"
        tasks = {"offline": {"n": 0}, "online": {"n": 1}, "vm": {"n": 2}, "bad_start": {"n": 3}}

        @staticmethod
        def get_tasks():
            return TaskFamily.tasks

        @staticmethod
        def get_instructions(t):
            return "task %d" % t["n"]

        @staticmethod
        def get_permissions(t):
            return ["full_internet"] if t["n"] == 1 else []

        @staticmethod
        def get_aux_vm_spec(t):
            return {"cpu_count_range": [1, 1]} if t["n"] == 2 else None

        @staticmethod
        def start(t):
            if t["n"] == 3:
                raise RuntimeError("start is broken on purpose")

        @staticmethod
        def score(t, submission):
            return 1.0
    """
    d = _family(tmp_path, "perm_family", module)
    with pytest.raises(ConfigError, match="full_internet; set allow_full_internet"):
        load_metr_family(d).instances(TaskOptions(ids=["online"]))
    (online,) = load_metr_family(d, allow_full_internet=True).instances(TaskOptions(ids=["online"]))
    spec = load_metr_family(d, allow_full_internet=True).sandbox_spec(online)
    assert spec is not None and spec.network == "full"
    with pytest.raises(ConfigError, match="aux"):
        load_metr_family(d).instances(TaskOptions(ids=["vm"]))
    fam = load_metr_family(d)
    (bad,) = fam.instances(TaskOptions(ids=["bad_start"]))
    spec = fam.sandbox_spec(bad)
    assert spec is not None
    async with docker_sandbox(spec) as box:
        with pytest.raises(MetrError) as e:
            await fam.setup(box, bad)
    assert "perm_family.py" in str(e.value) and "TaskFamily.start" in str(e.value)
    assert "broken on purpose" in str(e.value)


async def test_the_local_sandbox_is_refused() -> None:
    fam = MetrFamily(EXAMPLES / "csv_stats")
    inst = TaskInstance(family="csv_stats", id="sum", instructions="", hidden={"network": "none"})
    provider = registry.get("sandbox", "local")()
    async with provider.acquire(SandboxSpec(), {}) as box:
        with pytest.raises(ConfigError, match="only in the docker sandbox"):
            await fam.setup(box, inst)


@pytest.mark.docker
def test_a_failing_install_names_the_method(tmp_path: Path) -> None:
    module = GOOD_MODULE.replace(
        "    @staticmethod\n    def get_tasks",
        "    @staticmethod\n    def install():\n        raise OSError('no compiler here')\n\n"
        "    @staticmethod\n    def get_tasks",
    )
    d = _family(tmp_path, "bad_install", module)
    with pytest.raises(MetrError) as e:
        load_metr_family(d).instances(TaskOptions())
    assert "bad_install.py: TaskFamily.install failed" in str(e.value)
    assert "no compiler here" in str(e.value)


SERVICE_MODULE = """
import urllib.request


class TaskFamily:
    standard_version = "0.3.0"

    @staticmethod
    def get_tasks():
        return {"fetch": {}}

    @staticmethod
    def get_instructions(t):
        return "The host codes serves a code on port 8000. Submit it."

    @staticmethod
    def score(t, submission):
        # runs in the agent's container, as root: it too reaches the service only by name
        code = urllib.request.urlopen("http://codes:8000/code.txt", timeout=5).read().decode().strip()
        return 1.0 if submission.strip() == code else 0.0
"""


@pytest.mark.docker
async def test_manifest_services_run_beside_the_task(tmp_path: Path) -> None:
    d = _family(tmp_path, "with_service", SERVICE_MODULE, """
        services:
          codes:
            build: codes/Dockerfile
            user: root
            read_only_root: false
            healthcheck: {test: [bash, -c, "</dev/tcp/127.0.0.1/8000"]}
    """)
    (d / "codes").mkdir()
    (d / "codes" / "Dockerfile").write_text(
        "ARG PTEBENCH_BASE=ptebench/base\nFROM ${PTEBENCH_BASE}\nUSER root\n"
        "CMD [\"bash\", \"-c\", \"mkdir -p /srv/c && cd /srv/c && head -c 8 /dev/urandom | xxd -p > code.txt "
        "&& exec python3 -m http.server 8000\"]\n")
    fam = load_metr_family(d)
    (inst,) = fam.instances(TaskOptions())
    spec = fam.sandbox_spec(inst)
    assert spec is not None and list(spec.services) == ["codes"]
    async with docker_sandbox(spec) as box:
        await fam.setup(box, inst)
        assert not (await box.exec("ls /srv/c", user="root")).ok  # not the agent's filesystem
        got = await box.exec(["python3", "-c", "import urllib.request; print(urllib.request.urlopen('http://codes:8000/code.txt', timeout=5).read().decode())"], timeout=30)
        assert got.ok, got.stderr
        assert (await fam.score(box, inst, "wrong")).value == 0.0
        assert (await fam.score(box, inst, got.stdout.strip())).value == 1.0

"""The registry: built-ins, entry points from another distribution, dotted paths, errors."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from ptebench import registry


@pytest.fixture(autouse=True)
def _isolated_registry():
    """Each test's registrations (fake plugins, duplicates) end with the test."""
    registry.names("scaffold"), registry.names("task")  # built-ins load outside the scope
    with registry.isolated():
        yield


def test_builtins_listed() -> None:
    assert {"direct", "react"} <= set(registry.names("scaffold"))
    assert {"sim", "scripted"} <= set(registry.names("model"))
    assert "local" in registry.names("sandbox")
    assert "arith" in registry.names("task")


def test_unknown_name_lists_accepted() -> None:
    with pytest.raises(registry.UnknownComponent, match="accepted: .*direct.*react"):
        registry.get("scaffold", "nope")


def test_dotted_path() -> None:
    obj = registry.get("task", "tests.runners.fixtures:EchoTask")
    assert obj.__name__ == "EchoTask"
    with pytest.raises(registry.UnknownComponent, match="cannot import"):
        registry.get("task", "tests.runners.fixtures:Missing")


def test_entry_point_from_another_distribution(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # A real installed-distribution layout: a module plus a .dist-info with entry_points.txt.
    (tmp_path / "myplugin.py").write_text(
        "class Shout:\n    name = 'shout'\n"
    )
    dist = tmp_path / "myplugin-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: myplugin\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[ptebench]\nscaffold.shout = myplugin:Shout\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    assert "shout" in registry.names("scaffold")
    assert registry.get("scaffold", "shout").name == "shout"
    sys.modules.pop("myplugin", None)


def test_double_registration_is_an_error() -> None:
    @registry.register("task", "tmp-dup")
    class A:
        pass

    with pytest.raises(ValueError, match="already registered"):
        @registry.register("task", "tmp-dup")
        class B:
            pass


def test_no_fake_plugin_outlives_its_test() -> None:
    """Run after the plugin tests above (file order) and alone: the in-process
    `scaffolds list` sees only real scaffolds, each with its Params."""
    from typer.testing import CliRunner

    from ptebench.cli import app

    assert "shout" not in registry.names("scaffold") and "tmp-dup" not in registry.names("task")
    out = CliRunner().invoke(app, ["scaffolds", "list"])
    assert out.exit_code == 0, out.output
    assert "react" in out.output

"""The append-only store: durable lines, torn-tail repair, no duplicates, load() columns."""

from __future__ import annotations

from pathlib import Path

import pytest

from ptebench.errors import UserError
from ptebench.records import Episode, EpisodeSpec, Score
from ptebench.results.store import COLUMNS, RunStore, load


def _ep(i: int, score: float = 1.0) -> Episode:
    spec = EpisodeSpec(episode_id=f"id{i}", model="m", scaffold="direct", scaffold_label="direct",
                       task_family="f", task_id=f"t{i}", epoch=0, seed=i)
    return Episode(run_id="r", spec=spec, score=Score(value=score))


def test_append_is_idempotent_per_episode(tmp_path: Path) -> None:
    s = RunStore(tmp_path)
    assert s.append(_ep(1)) and s.append(_ep(2))
    assert not s.append(_ep(1, score=0.0))
    s.close()
    assert [e.spec.episode_id for e in RunStore(tmp_path).iter_episodes()] == ["id1", "id2"]


def test_torn_tail_is_cut_before_appending(tmp_path: Path) -> None:
    s = RunStore(tmp_path)
    s.append(_ep(1))
    s.close()
    with (tmp_path / "episodes.jsonl").open("a") as f:
        f.write('{"schema_version": 1, "run_id": "r", "sp')
    s2 = RunStore(tmp_path)
    assert s2.finished_ids() == {"id1"}
    s2.append(_ep(2))
    s2.close()
    lines = (tmp_path / "episodes.jsonl").read_text().splitlines()
    assert len(lines) == 2 and all(line.startswith("{") and line.endswith("}") for line in lines)


def test_load_gives_one_row_per_episode(tmp_path: Path) -> None:
    s = RunStore(tmp_path)
    for i in range(3):
        s.append(_ep(i, score=i / 2))
    s.close()
    df = load(tmp_path)
    assert list(df.columns) == COLUMNS
    assert df.score.tolist() == [0.0, 0.5, 1.0]
    import ptebench.results

    by_file = ptebench.results.load(tmp_path / "episodes.jsonl")  # the documented entry point
    assert by_file.episode_id.tolist() == ["id0", "id1", "id2"]


def test_load_errors_are_clear(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="no ptebench run here"):
        load(tmp_path / "nothing")
    (tmp_path / "episodes.jsonl").write_text('{"bogus": 1}\n')
    with pytest.raises(UserError, match=r"episodes.jsonl:1: not a valid episode record"):
        load(tmp_path)


def test_readme_names_only_real_load_columns() -> None:
    """The README's description of ``ptebench.results.load`` names columns that exist."""
    import re

    from ptebench.results.store import COLUMNS

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    start = readme.index("`ptebench.results.load(path)`")
    para = readme[start:readme.index("\n\n", start)]
    named = set(re.findall(r"`([a-z_]+)`", para))
    assert {"scaffold", "scaffold_name", "params_json", "failure"} <= named
    assert named <= set(COLUMNS), named - set(COLUMNS)

"""Build a task's Dockerfile into a local image, cached by the hash of what it is built from.

``build_dockerfile(context, dockerfile)`` is the one place ptebench builds task images
(Harbor environments and their compose services; reusable for a native ``sandbox.build``).
The tag is ``<repo>:<hash>``, where the hash covers every file of the build context, the
(rewritten) Dockerfile, the build arguments and the ids of the base images: an unchanged
task reuses its image, a changed file or base image builds a new one.

Images without a registry: before building, each ``FROM`` image is looked up locally. One
that is missing is replaced through the **image map** (``{"ubuntu:24.04": "ptebench/base"}``)
— from the caller (an experiment option) and from ``PTEBENCH_IMAGE_MAP``
(``"ubuntu:24.04=ptebench/base,python:3.12-slim=ptebench/base"``; the caller's entries
win). An image neither present nor mapped is left to the engine to pull; when that fails,
the error names the image and both ways to map it.
"""

from __future__ import annotations

import fnmatch
import hashlib
import io
import os
import re
import tarfile
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ptebench.errors import ConfigError, SandboxError

IMAGE_MAP_ENV = "PTEBENCH_IMAGE_MAP"
"""``FROM`` image → local image, as ``a=b,c=d`` (also ``;`` or newlines between entries)."""
LABEL_KIND = "ptebench.kind"
BUILD_KIND = "task-image"

_FROM = re.compile(r"^(\s*FROM\s+)((?:--\S+\s+)*)(\S+)(.*)$", re.IGNORECASE | re.MULTILINE)


class ImageBuildError(SandboxError):
    """The Dockerfile did not build (the message names the file and the failing step)."""


@dataclass(frozen=True)
class BuiltImage:
    """What ``build_image`` produced."""

    tag: str
    """``<repo>:<content hash>``."""
    image_id: str
    built: bool
    """False when the tag already existed (the cache hit: nothing was built)."""
    seconds: float


_ARG = re.compile(r"^\s*ARG\s+([A-Za-z_][A-Za-z0-9_]*)(?:=(\S*))?\s*$", re.IGNORECASE | re.MULTILINE)
_STEP = re.compile(r"^Step (\d+/\d+) : (.*)$", re.MULTILINE)


def expand_from_args(text: str, build_args: Mapping[str, str]) -> str:
    """``FROM ${NAME}`` / ``FROM $NAME`` lines with the build argument (or the default of an
    ``ARG`` declared before the first ``FROM``) filled in, so the base image can be looked
    up, hashed and named in errors."""
    first = _FROM.search(text)
    head = text[: first.start()] if first else text
    values = {m.group(1): m.group(2) or "" for m in _ARG.finditer(head)}
    values.update(build_args)

    def sub(m: re.Match[str]) -> str:
        image = re.sub(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}|\$([A-Za-z_][A-Za-z0-9_]*)",
                       lambda v: values.get(v.group(1) or v.group(2), v.group(0)), m.group(3))
        return f"{m.group(1)}{m.group(2)}{image}{m.group(4)}"

    return _FROM.sub(sub, text)


def failing_step(log: str) -> str | None:
    """The last ``Step N/M : INSTRUCTION`` line of a build log (the step that failed)."""
    steps = _STEP.findall(log)
    return f"step {steps[-1][0]} ({steps[-1][1].strip()})" if steps else None


def image_map_from_env(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The mapping in ``PTEBENCH_IMAGE_MAP``.

    Raises:
        ConfigError: an entry without ``=``.
    """
    raw = (environ if environ is not None else os.environ).get(IMAGE_MAP_ENV, "")
    out: dict[str, str] = {}
    for part in re.split(r"[,;\n]", raw):
        if not part.strip():
            continue
        src, sep, dst = part.partition("=")
        if not sep or not src.strip() or not dst.strip():
            raise ConfigError(f"{IMAGE_MAP_ENV}: entry {part.strip()!r} must look like 'ubuntu:24.04=ptebench/base'")
        out[src.strip()] = dst.strip()
    return out


def from_images(dockerfile_text: str) -> list[str]:
    """The external images the Dockerfile's stages start from (stage names and scratch excluded)."""
    stages: set[str] = set()
    out: list[str] = []
    for m in _FROM.finditer(dockerfile_text):
        image = m.group(3)
        alias = re.match(r"\s+AS\s+(\S+)", m.group(4), re.IGNORECASE)
        if image.lower() != "scratch" and image not in stages and image not in out:
            out.append(image)
        if alias:
            stages.add(alias.group(1))
    return out


def _local_id(client: Any, image: str) -> str | None:
    try:
        return str(client.images.get(image).id)
    except Exception:
        return None


def _ignored(context: Path) -> list[str]:
    f = context / ".dockerignore"
    if not f.is_file():
        return []
    return [ln.strip() for ln in f.read_text().splitlines() if ln.strip() and not ln.startswith("#")]


def _context_files(context: Path, skip: Path | None) -> list[Path]:
    patterns = _ignored(context)
    out = []
    for p in sorted(context.rglob("*")):
        if not p.is_file() or p == skip:
            continue
        rel = p.relative_to(context).as_posix()
        if any(fnmatch.fnmatch(rel, pat.rstrip("/")) or rel.startswith(pat.rstrip("/") + "/")
               for pat in patterns):
            continue
        out.append(p)
    return out


def rewrite_from(text: str, mapping: Mapping[str, str]) -> str:
    """``text`` with every ``FROM`` image found in ``mapping`` replaced by its target."""

    def sub(m: re.Match[str]) -> str:
        image = m.group(3)
        return f"{m.group(1)}{m.group(2)}{mapping.get(image, image)}{m.group(4)}"

    return _FROM.sub(sub, text)


def build_dockerfile(context: Path, dockerfile: Path | None = None, **kwargs: Any) -> str:
    """``build_image`` (same arguments), returning only the tag.

    Raises:
        ConfigError, ImageBuildError: as ``build_image``.
    """
    return build_image(context, dockerfile, **kwargs).tag


def build_image(
    context: Path,
    dockerfile: Path | None = None,
    *,
    repo: str = "ptebench/task",
    image_map: Mapping[str, str] | None = None,
    build_args: Mapping[str, str] | None = None,
    network: bool = False,
    timeout_s: float = 600.0,
    labels: Mapping[str, str] | None = None,
    client: Any = None,
) -> BuiltImage:
    """Build ``dockerfile`` (default ``context/Dockerfile``) with ``context`` unless its tag
    exists already.

    ``network``: whether RUN steps get a network (default none: builds are offline and
    cannot fetch anything). ``timeout_s`` bounds the whole build.

    Raises:
        ConfigError: no such Dockerfile; or a FROM image that is neither local nor mapped
            and could not be pulled (the message says how to map it).
        ImageBuildError: a build step failed (with the tail of its log).
    """
    from ptebench.sandbox import engine

    dockerfile = dockerfile or context / "Dockerfile"
    if not dockerfile.is_file():
        raise ConfigError(f"{dockerfile}: no such Dockerfile")
    own = client is None
    client = client or engine.client()
    try:
        mapping = {**image_map_from_env(), **(image_map or {})}
        t0 = time.monotonic()
        args = dict(sorted((build_args or {}).items()))
        text = expand_from_args(dockerfile.read_text(), args)
        used: dict[str, str] = {}
        for image in from_images(text):
            if _local_id(client, image) is None and image in mapping:
                used[image] = mapping[image]
        text = rewrite_from(text, used)
        ids = []
        for image in from_images(text):
            ids.append(f"{image}@{_local_id(client, image)}")
        digest = hashlib.sha256()
        digest.update(text.encode() + b"\0" + repr(args).encode() + b"\0" + repr(ids).encode())
        buf = io.BytesIO()
        inside = dockerfile.resolve().is_relative_to(context.resolve())
        with tarfile.open(fileobj=buf, mode="w") as tar:
            for f in _context_files(context, dockerfile if inside else None):
                rel = f.relative_to(context).as_posix()
                data = f.read_bytes()
                mode = 0o755 if f.stat().st_mode & 0o111 else 0o644
                digest.update(rel.encode() + b"\0" + str(mode).encode() + b"\0" + data)
                info = tarfile.TarInfo(rel)
                info.size, info.mode = len(data), mode
                tar.addfile(info, io.BytesIO(data))
            name = ".ptebench.Dockerfile"
            info = tarfile.TarInfo(name)
            info.size = len(text.encode())
            tar.addfile(info, io.BytesIO(text.encode()))
        tag = f"{repo}:{digest.hexdigest()[:16]}"
        cached = _local_id(client, tag)
        if cached is not None:
            return BuiltImage(tag, cached, False, time.monotonic() - t0)
        docker = engine.docker_module()
        builder = docker.from_env(timeout=max(int(timeout_s), 1)) if own else client
        api = builder.api
        log: list[str] = []
        error: str | None = None
        try:
            for chunk in api.build(
                fileobj=io.BytesIO(buf.getvalue()), custom_context=True, dockerfile=name, tag=tag,
                network_mode="bridge" if network else "none", rm=True, forcerm=True, decode=True,
                buildargs=args, labels={LABEL_KIND: BUILD_KIND, **(labels or {})},
            ):
                if "stream" in chunk:
                    log.append(str(chunk["stream"]))
                if "error" in chunk:
                    error = str(chunk["error"])
        except Exception as e:  # timeouts and engine errors
            error = f"{type(e).__name__}: {e}"
        finally:
            if own:
                builder.close()
        image_id = _local_id(client, tag) if error is None else None
        if image_id is not None:
            return BuiltImage(tag, image_id, True, time.monotonic() - t0)
        tail = "".join(log)[-1500:].strip()
        step = failing_step("".join(log))
        missing = [i.split("@")[0] for i in ids if i.endswith("@None")]
        if missing:
            first = missing[0]
            raise ConfigError(
                f"{dockerfile}: FROM {first} is not a local image and could not be pulled "
                f"({error}). Map it to a local image: the experiment option image_map "
                f"({{{first}: ptebench/base}}) or {IMAGE_MAP_ENV}='{first}=ptebench/base'"
            )
        at = f" at {step}" if step else ""
        raise ImageBuildError(f"{dockerfile}: build failed{at}: {(error or '').strip()}\n{tail}")
    finally:
        if own:
            client.close()

"""`ptebench sandbox ...`: build the base image, list and clean up sandboxes."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from ptebench.errors import UserError

app = typer.Typer(help="Docker sandboxes: build the base image, list and clean up.",
                  no_args_is_help=True)
console = Console()


@app.command()
def build(
    force: Annotated[bool, typer.Option(help="Rebuild even when the image exists.")] = False,
    method: Annotated[str, typer.Option(
        help="auto (docker build when a registry answers, else debootstrap), dockerfile, "
             "or debootstrap.")] = "auto",
) -> None:
    """Build ptebench/base (offline with debootstrap + docker import when no registry)."""
    from ptebench.sandbox.images import ensure_base_image

    if method not in ("auto", "dockerfile", "debootstrap"):
        raise UserError(f"--method {method!r}: accepted values are auto, dockerfile, debootstrap")
    r = ensure_base_image(force=force, method=method)  # type: ignore[arg-type]
    if r.method == "existing":
        console.print(f"{r.image} already exists ({r.image_id[:19]}); --force rebuilds it")
    else:
        console.print(f"built {r.image} ({r.image_id[:19]}) by {r.method} in {r.seconds:.1f} s")


@app.command()
def cleanup(
    run: Annotated[str | None, typer.Option(help="Only what this run id left behind.")] = None,
) -> None:
    """Remove ptebench containers (sandboxes and their services), workdir volumes, networks
    and snapshot images (found by label)."""
    from ptebench.sandbox.docker import purge

    n = purge(run=run, passes=3)
    what = f"run {run}" if run else "all runs"
    console.print(f"removed {n['containers']} containers, {n['volumes']} volumes, "
                  f"{n['images']} snapshot images ({what})")


@app.command("ls")
def list_sandboxes() -> None:
    """Show ptebench containers (running or not) with their run and episode."""
    from ptebench.sandbox import engine
    from ptebench.sandbox.pool import LABEL_OWNER, episode_of
    from ptebench.sandbox.profile import LABEL_KIND, LABEL_RUN

    c = engine.client()
    t = Table("name", "status", "run", "episode", "image", "owner")
    # sparse: no per-container inspect, so containers removed meanwhile do not break the list
    found = [ct for kind in ("sandbox", "service")
             for ct in c.containers.list(all=True, filters={"label": f"{LABEL_KIND}={kind}"}, sparse=True)]
    for ct in found:
        a = ct.attrs
        lab = a.get("Labels") or {}
        name = (a.get("Names") or ["?"])[0].lstrip("/")
        ep = episode_of(name, lab)
        if lab.get(LABEL_KIND) == "service":
            ep = f"{ep} (service {lab.get('ptebench.service', '?')})".strip()
        t.add_row(name, a.get("Status", ""), lab.get(LABEL_RUN, ""), ep, a.get("Image", ""),
                  lab.get(LABEL_OWNER, ""))
    imgs = c.images.list(filters={"label": f"{LABEL_KIND}=snapshot"})
    console.print(t)
    console.print(f"{len(imgs)} snapshot images")

"""`ptebench models ...`: the model catalog and the server launcher."""

from __future__ import annotations

import json
import time
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from ptebench.errors import UserError
from ptebench.models.catalog import ModelCard, default_catalog

app = typer.Typer(help="Models: the catalog of cards, and local model servers.", no_args_is_help=True)


def _num(x: float | None, fmt: str = ".3g") -> str:
    return "—" if x is None else format(x, fmt)


def _flop(card: ModelCard) -> str:
    if card.train_flop is None:
        return "—"
    if card.train_flop_sigma_log10:
        return f"{card.train_flop:.2e} ±{card.train_flop_sigma_log10:g} dex"
    return f"{card.train_flop:.2e}"


def _price(card: ModelCard) -> str:
    if card.price_input_per_mtok is None or card.price_output_per_mtok is None:
        return "—"
    return f"${card.price_input_per_mtok:g} / ${card.price_output_per_mtok:g}"


@app.command("list")
def list_cards(
    family: Annotated[str | None, typer.Option(help="Only this family (e.g. Qwen2.5).")] = None,
    provider: Annotated[str | None, typer.Option(help="Only this provider (openai, anthropic, vllm, sim).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the cards as JSON.")] = False,
) -> None:
    """List the model catalog: name, provider, family, params, training FLOP, prices (in/out per Mtok)."""
    cards = [
        c for c in default_catalog().cards()
        if (family is None or c.family == family) and (provider is None or c.provider == provider)
    ]
    out = Console()  # made per call, so the terminal width is read when printing
    if as_json:
        out.print_json(json.dumps([c.model_dump(mode="json") for c in cards]))
        return
    table = Table()
    # Names are what users copy into experiment files: never cut or wrap them.
    table.add_column("name", no_wrap=True, min_width=max((len(c.name) for c in cards), default=4))
    for header in ("provider", "family", "params (active)", "train FLOP", "price in/out $/Mtok"):
        table.add_column(header)
    for c in cards:
        params = _num(c.params_total)
        if c.params_active is not None and c.params_active != c.params_total:
            params += f" ({_num(c.params_active)})"
        table.add_row(c.name, c.provider, c.family or "—", params, _flop(c), _price(c))
    out.print(table)


@app.command("serve")
def serve(
    model_path: Annotated[str, typer.Argument(help="What to serve: HF repo/folder (vllm) or GGUF file (llama_cpp).")],
    template: Annotated[str, typer.Option(help="vllm or llama_cpp.")] = "vllm",
    name: Annotated[str | None, typer.Option(help="Served model name (default: the path).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (default: a free one).")] = None,
    log_file: Annotated[str | None, typer.Option(help="Server log file.")] = None,
) -> None:
    """Start a model server with ptebench's launcher, print its base_url, stop it on Ctrl-C."""
    from ptebench.models.vllm import LaunchConfig, ServerLauncher

    if template not in ("vllm", "llama_cpp"):
        raise UserError(f"--template: expected vllm or llama_cpp, got {template!r}")
    launch = LaunchConfig.model_validate(
        {"template": template, "model_path": model_path, "port": port, "log_file": log_file}
    )
    out = Console()
    launcher = ServerLauncher(launch, name or model_path)
    launcher.start()
    out.print(f"serving {launcher.served_name!r} at {launcher.base_url} "
              f"(started in {launcher.startup_s:.1f}s; log {launcher.log_path})")
    try:
        while launcher.proc is not None and launcher.proc.poll() is None:
            time.sleep(1.0)
    except KeyboardInterrupt:
        pass
    finally:
        launcher.stop()

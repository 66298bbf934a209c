"""``driftsched config``: what ``--set KEY=VALUE`` accepts."""

from __future__ import annotations

from driftsched.cli.common import command_group

app = command_group("The configuration keys --set accepts, with types, defaults and meaning.")


@app.command("keys")
def config_keys() -> None:
    """Every simulation config key (--set KEY=VALUE on sim, sweep, capacity, paper)."""
    import pandas as pd

    from driftsched.ground.console import console, table
    from driftsched.sim.config import SimConfig

    rows = []
    for name, info in SimConfig.model_fields.items():
        kind = getattr(info.annotation, "__name__", None) or str(info.annotation)
        default = info.get_default(call_default_factory=True)
        rows.append((name, kind.replace("typing.", ""), repr(default), info.description or ""))
    frame = pd.DataFrame(rows, columns=["key", "type", "default", "meaning"])
    console.print(table(frame, "--set KEY=VALUE (JSON for lists and dicts)"))

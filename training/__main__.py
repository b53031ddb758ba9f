"""``python -m tsjnet_sdk.training CONFIG [options]``: the same command as ``tsjnet train`` (for torchrun)."""

import typer

from tsjnet_sdk.training.cli import train_command

app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)
app.command()(train_command)

if __name__ == "__main__":
    app()

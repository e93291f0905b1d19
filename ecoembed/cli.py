"""The ``ecoembed`` command. Thin: parse options, call library functions.

Every subcommand has ``--help``. Errors caused by input (``EcoembedError``,
``fluxnet.FluxDataError``) are printed as one line, without a traceback, and
exit with status 2.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from ecoembed import __version__


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="ecoembed")
def cli() -> None:
    """ecoembed: GPP modelling from Sentinel-1/Sentinel-2 embeddings.

    \b
    Typical use:
      ecoembed demo --out demo_out              # synthetic end-to-end run, no download
      ecoembed fit-gpp --sites sites.csv --out runs/gpp
      ecoembed plot-seasonal --run runs/gpp --site DE-Tha
    """


# --- commands are registered below, one function each; keep them thin -------------------------


def main(argv: list[str] | None = None) -> int:
    """Console-script entry point: run the CLI, turn input errors into one-line messages."""
    from fluxnet.errors import FluxDataError

    from ecoembed.errors import EcoembedError

    try:
        cli.main(args=argv, prog_name="ecoembed", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        return 130
    except click.ClickException as exc:
        exc.show()
        return exc.exit_code
    except (EcoembedError, FluxDataError) as exc:
        click.echo(f"error: {exc}", err=True)
        return 2
    except KeyboardInterrupt:
        click.echo("interrupted; completed work is kept, re-run the same command to resume", err=True)
        return 130
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

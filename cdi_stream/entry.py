"""The console script's entry point, kept free of heavy imports.

Importing the command line pulls in typer, rich and pydantic; a Ctrl-C during that
second would otherwise end in an import traceback instead of a quiet exit.
"""

from __future__ import annotations

import sys


def main() -> None:
    try:
        from cdi_stream.cli import main as run

        run()
    except KeyboardInterrupt:
        sys.exit(130)


if __name__ == "__main__":
    main()

"""The ``dicomcloak`` command line (Typer); entry point :func:`dicomcloak.cli.app.main`."""

"""Subcommands of ``raceway``: one module per command (see :mod:`raceway_server.cli`)."""

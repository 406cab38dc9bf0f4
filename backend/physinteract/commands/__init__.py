"""Subcommands of the ``physinteract`` command line (see physinteract.cli)."""

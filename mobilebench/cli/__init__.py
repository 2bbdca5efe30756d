"""The ``mobilebench`` command line: one thin module per command, logic in the library."""

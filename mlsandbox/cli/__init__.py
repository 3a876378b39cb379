"""The command line: `main.py` registers the command groups, one module each; `common.py` holds the shared options."""

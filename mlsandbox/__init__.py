"""The native sandbox: start, watch and stop every component without Docker."""

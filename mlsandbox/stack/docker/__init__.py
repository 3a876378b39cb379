"""The Docker backend: a sandbox as a compose project on an engine that answers, or on a private one started here."""

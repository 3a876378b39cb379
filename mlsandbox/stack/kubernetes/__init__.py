"""The Kubernetes backend: a session as a namespace of its own on a cluster (see backend.py)."""

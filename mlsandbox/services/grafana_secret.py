"""`python -m mlsandbox.grafana_secret FILE`: Grafana's admin password, drawn once.

Run by compose's one-shot `grafana-secret` service before Grafana starts: writes a random password into FILE
(run/secrets/grafana-admin-password on the host, untracked) unless it is there already, and says where it is.
Grafana reads it through GF_SECURITY_ADMIN_PASSWORD__FILE, so no password is ever in the repository.
"""

from __future__ import annotations

import os
import secrets
import sys
from pathlib import Path

HOST_PATH = "run/secrets/grafana-admin-password"  # where compose.yaml mounts the file's folder from


def ensure(path: Path) -> bool:
    """Write a new password into `path` unless one is there; True when it was written now."""
    if path.is_file() and path.read_text().strip():
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(secrets.token_urlsafe(18) + "\n")
    # Readable by Grafana's own user in its container, and by the host's user who reads it to log in.
    os.chmod(tmp, 0o644)
    os.replace(tmp, path)
    return True


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python -m mlsandbox.grafana_secret FILE", file=sys.stderr)
        return 2
    new = ensure(Path(argv[0]))
    print(
        f"Grafana: user admin, password in {HOST_PATH} ({'drawn now' if new else 'kept from the first start'}); "
        "delete the file and the grafana-data volume to draw another."
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

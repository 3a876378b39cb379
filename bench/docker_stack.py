"""The Docker path against the native one: build times, image sizes, time to healthy, and the memory each stack
holds while it plays `smoke` on the reference solution, measured in one run.

    .venv/bin/python bench/docker_stack.py [--cold]

Uses the engine that answers, or starts the private one under run/docker (stopped again at the end if it was
started here). --cold removes every unused image and the engine's build cache first, so everything is built
again from the base's root file system (cached by the first debootstrap, which took 45 s here).
Compose project `mlsandbox-bench` on ports from 25200; the native stack on the benchmark ports of bench/sandbox.py.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil
from sandbox import REPO, driver

sys.path.insert(0, str(REPO))

from mlsandbox.layout import Ports, RunLayout  # noqa: E402
from mlsandbox.stack.docker.backend import engine_root  # noqa: E402
from mlsandbox.stack.docker.compose import LOCAL_BASE_IMAGE, ComposeProject  # noqa: E402
from mlsandbox.stack.docker.engine import PrivateEngine, answers, connect  # noqa: E402
from mlsandbox.stack.state import SandboxState  # noqa: E402

PROJECT = "mlsandbox-bench"
DOCKER_PORTS = Ports.block(25200)
IMAGES = [
    "mlsandbox/model-service:0.1.0-debian",
    "mlsandbox/prometheus-debian:bookworm",
    "mlsandbox/alertmanager-debian:bookworm",
]
SAMPLE_SECONDS = 40  # memory is sampled from 20 s into the scenario (drift, labels, faults all running)


def timed(fn) -> tuple[float, object]:
    t0 = time.monotonic()
    result = fn()
    return time.monotonic() - t0, result


def docker_memory(sandbox: ComposeProject) -> dict[str, float]:
    out = sandbox.docker("stats", "--no-stream", "--format", "{{json .}}").stdout
    mem = {}
    for line in out.splitlines():
        row = json.loads(line)
        if not row["Name"].startswith(PROJECT):
            continue
        used = row["MemUsage"].split("/")[0].strip()
        number, unit = float(used.rstrip("KMGiB")), used.lstrip("0123456789.")
        mem[row["Name"].split("_")[1]] = number * {"KiB": 1 / 1024, "MiB": 1, "GiB": 1024, "B": 1 / 2**20}[unit]
    return mem


def native_memory(run: Path) -> dict[str, float]:
    state = SandboxState.load(RunLayout(run))
    mem = {}
    for comp in state.components if state else []:
        try:
            root = psutil.Process(comp.pid)
            procs = [root, *root.children(recursive=True)]
            # PSS: shared pages split among the processes that map them, as a container's cgroup counts them
            # once (RSS would count the libraries uvicorn's reloader and its worker share twice).
            mem[comp.name] = sum(p.memory_full_info().pss for p in procs) / 2**20
        except psutil.NoSuchProcess:
            continue
    return mem


def sample(read, seconds: float) -> dict[str, float]:
    """Median of each component's memory over `seconds`, one reading every 2 s."""
    readings: dict[str, list[float]] = {}
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        for name, mb in read().items():
            readings.setdefault(name, []).append(mb)
        time.sleep(2)
    return {name: statistics.median(v) for name, v in readings.items()}


def bench_docker(cold: bool, candidate: Path) -> dict:
    private = PrivateEngine(engine_root())
    engine_was_running = answers(None) or answers(private.host)
    engine = connect(private.root, print)
    settings = {"CANDIDATE_DIR": str(candidate), "SCENARIO": "smoke", **DOCKER_PORTS.compose_environment()}
    sandbox = ComposeProject(engine, True, PROJECT, settings, say=lambda _: None)
    figures: dict = {}
    try:
        if cold:
            # Every image not in use (earlier builds are the build cache too) and the base: all rebuilt below.
            sandbox.docker("image", "rm", "-f", *IMAGES, LOCAL_BASE_IMAGE)
            sandbox.docker("image", "prune", "--all", "--force", timeout=600)
            sandbox.docker("builder", "prune", "--all", "--force", timeout=600)
        figures["base_image_s"], _ = timed(sandbox.ensure_base_image)
        figures["build_s"], _ = timed(sandbox.build)
        figures["image_mb"] = {
            image: int(sandbox.docker("image", "inspect", "--format", "{{.Size}}", image).stdout.strip()) / 1e6
            for image in [LOCAL_BASE_IMAGE, *IMAGES]
        }
        # Fresh volumes: the trainer trains and registers the model, as on a team's first `up`.
        figures["up_fresh_s"] = sandbox.up()
        time.sleep(20)
        figures["memory_mb"] = sample(lambda: docker_memory(sandbox), SAMPLE_SECONDS)
        sandbox.compose("stop", capture=True)
        # Volumes kept: the model exists, the trainer exits at once.
        figures["up_again_s"] = sandbox.up()
    finally:
        sandbox.down(volumes=True)
        if not engine_was_running and engine.private:
            engine.private.stop()
    return figures


def bench_native(candidate: Path) -> dict:
    figures: dict = {}
    with driver(candidate) as d:
        t0 = time.monotonic()
        with d.running("--scenario", "smoke"):
            figures["up_fresh_s"] = time.monotonic() - t0
            time.sleep(20)
            figures["memory_mb"] = sample(lambda: native_memory(d.run_dir), SAMPLE_SECONDS)
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cold", action="store_true", help="Remove the images and build cache first.")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="mlsandbox-bench-") as tmp:
        candidate = Path(tmp) / "candidate"
        subprocess.run(["cp", "-r", str(REPO / "reference_solution"), str(candidate)], check=True)
        docker = bench_docker(args.cold, candidate)
        native = bench_native(candidate)

    print(f"\nDocker (compose + local-images override, {'cold' if args.cold else 'warm'} build cache)")
    print(f"  base image ready        {docker['base_image_s']:7.1f} s   (imported from the cache, or debootstrap)")
    print(f"  build (3 images)        {docker['build_s']:7.1f} s")
    for image, mb in docker["image_mb"].items():
        print(f"  image {image:<40} {mb:7.0f} MB")
    print(f"  up to healthy, fresh    {docker['up_fresh_s']:7.1f} s   (trainer trains the model)")
    print(f"  up to healthy, again    {docker['up_again_s']:7.1f} s   (volumes kept)")
    print(f"Native (mlsandbox up): up to healthy, fresh {native['up_fresh_s']:.1f} s")
    print(
        f"\nMemory while playing smoke (median over {SAMPLE_SECONDS} s, MB): docker stats vs PSS of each native "
        "process group"
    )
    total_d = total_n = 0.0
    for service, mb in sorted(docker["memory_mb"].items()):
        native_mb = native["memory_mb"].get(service, float("nan"))
        total_d += mb
        total_n += 0 if native_mb != native_mb else native_mb
        print(f"  {service:<16} docker {mb:7.0f}   native {native_mb:7.0f}")
    print(f"  {'total':<16} docker {total_d:7.0f}   native {total_n:7.0f}   ratio {total_d / total_n:.2f}")


if __name__ == "__main__":
    main()

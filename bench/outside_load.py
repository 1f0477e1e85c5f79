"""CPU load from outside the hub while a burst of spawns runs (``bench/spawn.py --outside-load``).

N burners, as processes of this host or as containers of the image (where users' busy kernels
are), each ending by itself after a given time at the latest, so that a benchmark that dies
leaves no load behind; the containers have no network and are removed afterwards.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from typing import Any

BURN_CODE = (
    "import time\nend = time.monotonic() + {seconds}\nwhile time.monotonic() < end:\n    pass\n"
)


@contextlib.contextmanager
def burner_containers(workers: int, seconds: float, image: str) -> Any:
    """The same load as containers (where users' busy kernels are): each a one-process CPU
    burner without network that exits by itself after ``seconds``; all removed afterwards."""
    import docker

    engine = docker.from_env()
    code = BURN_CODE.format(seconds=seconds)
    burners = []
    try:
        for index in range(workers):
            burners.append(
                engine.containers.run(
                    image,
                    ["python3", "-c", code],
                    name=f"berth-bench-burner-{os.getpid()}-{index}",
                    detach=True,
                    network_mode="none",
                    labels={"berth.bench": "burner"},
                )
            )
        yield
    finally:
        for burner in burners:
            with contextlib.suppress(docker.errors.APIError):
                burner.remove(force=True)
        engine.close()


@contextlib.contextmanager
def outside_load(workers: int, seconds: float, where: str = "host", image: str = "") -> Any:
    """``workers`` CPU burners while the block runs; each ends by itself after ``seconds``.

    On this host's cgroup v1 layout, processes of the host and the engine's containers (as a
    group) share the CPU differently; ``where`` says which kind of other work to imitate."""
    if where == "containers":
        with burner_containers(workers, seconds, image):
            yield
        return
    code = BURN_CODE.format(seconds=seconds)
    burners = [subprocess.Popen([sys.executable, "-c", code]) for _ in range(workers)]
    try:
        yield
    finally:
        for burner in burners:
            burner.terminate()
        for burner in burners:
            burner.wait(10)

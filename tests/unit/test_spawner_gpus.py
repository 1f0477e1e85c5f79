"""GPU requests per image or profile (berth.spawner.gpus), tested as specs: no GPU is on these
machines, so what is checked is the whole host config the engine would get, and that it is
exactly what `docker run --gpus` sends."""

from __future__ import annotations

from typing import Any

import docker.types
import pytest
from test_spawner_unit import make_spawner

from berth.spawner import gpus, specs
from berth.spawner.errors import SpawnException
from berth.spawner.gpus import ALL_COUNT, GpuRequest

ALLOWED = {
    "Python": "berth/scipy-notebook:latest",
    "PyTorch (CPU)": "lab/pytorch:2",
    "PyTorch (GPU)": "lab/pytorch:2",
    "R": "berth/r-notebook:latest",
}
GPUS = {"PyTorch (GPU)": "all", "berth/r-notebook:latest": 1, "lab/pytorch:2": ["0", "GPU-9f2c"]}

# What the docker CLI sends for `--gpus all` (HostConfig.DeviceRequests of docker 20.10+).
CLI_GPUS_ALL = {
    "Driver": "",
    "Count": -1,
    "DeviceIDs": [],
    "Capabilities": [["gpu"]],
    "Options": {},
}


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("all", GpuRequest(count=ALL_COUNT)),
        ("ALL ", GpuRequest(count=ALL_COUNT)),
        (2, GpuRequest(count=2)),
        (["0", "2"], GpuRequest(device_ids=("0", "2"))),
        ([1], GpuRequest(device_ids=("1",))),
        (
            ["GPU-3a4f0c1e-0000-1111-2222-333344445555"],
            GpuRequest(device_ids=("GPU-3a4f0c1e-0000-1111-2222-333344445555",)),
        ),
    ],
)
def test_requests_as_docker_run_gpus_takes_them(value: Any, expected: GpuRequest) -> None:
    assert gpus.parse(value) == expected


@pytest.mark.parametrize(
    "value",
    [0, -1, True, "", "some", "2", [], ["0", "0"], ["0; rm -rf /"], [""], {"count": 1}, None, 1.5],
)
def test_anything_else_is_refused(value: Any) -> None:
    with pytest.raises(ValueError, match="GPU"):
        gpus.parse(value)


def test_device_requests_are_what_the_cli_sends() -> None:
    hc = docker.types.HostConfig(
        version="1.41", device_requests=[GpuRequest(count=ALL_COUNT).device_request()]
    )
    assert hc["DeviceRequests"] == [CLI_GPUS_ALL]
    two = docker.types.HostConfig(
        version="1.41", device_requests=[GpuRequest(device_ids=("0", "2")).device_request()]
    )
    assert two["DeviceRequests"] == [
        {
            "Driver": "",
            "Count": 0,
            "DeviceIDs": ["0", "2"],
            "Capabilities": [["gpu"]],
            "Options": {},
        }
    ]


def test_a_profile_wins_over_its_image_and_nothing_means_no_gpu() -> None:
    parsed = gpus.parse_all(GPUS)
    assert gpus.request_for(parsed, ALLOWED, "PyTorch (GPU)", "lab/pytorch:2") == GpuRequest(
        ALL_COUNT
    )
    assert gpus.request_for(parsed, ALLOWED, ["PyTorch (GPU)"], "lab/pytorch:2") == GpuRequest(
        ALL_COUNT
    )
    # The CPU profile has no entry of its own: its image's.
    assert gpus.request_for(parsed, ALLOWED, "PyTorch (CPU)", "lab/pytorch:2") == GpuRequest(
        device_ids=("0", "GPU-9f2c")
    )
    assert gpus.request_for(
        parsed, ALLOWED, "berth/r-notebook:latest", "berth/r-notebook:latest"
    ) == GpuRequest(1)
    assert gpus.request_for(parsed, ALLOWED, "Python", "berth/scipy-notebook:latest") is None
    assert gpus.request_for(parsed, ALLOWED, None, "berth/scipy-notebook:latest") is None
    # A display name that is not an allowed profile is no key into gpus (the image decides).
    assert gpus.request_for(parsed, {}, "PyTorch (GPU)", "other:1") is None


def test_form_labels_say_which_choices_come_with_gpus() -> None:
    assert gpus.form_labels(ALLOWED, gpus.parse_all(GPUS)) == {
        "Python": "Python",
        "PyTorch (CPU)": "PyTorch (CPU) (with GPU 0, GPU-9f2c)",
        "PyTorch (GPU)": "PyTorch (GPU) (with all GPUs)",
        "R": "R (with 1 GPU)",
    }


async def test_the_chosen_profile_puts_its_gpus_in_the_container_spec() -> None:
    sp = make_spawner(allowed_images=ALLOWED, gpus=GPUS, mem_limit=0, cpu_limit=None, pids_limit=0)
    sp.user_options = {"image": "PyTorch (GPU)"}
    spec = await sp._build_spec(await sp.chosen_image())
    assert specs.host_config_kwargs(spec) == {
        "binds": {},
        "cap_drop": ["ALL"],
        "cap_add": [],
        "security_opt": ["no-new-privileges"],
        "init": False,
        "device_requests": [
            {"driver": "", "count": -1, "device_ids": [], "capabilities": [["gpu"]], "options": {}}
        ],
        "port_bindings": {8888: ("127.0.0.1",)},
    }
    sp.user_options = {"image": "Python"}
    spec = await sp._build_spec(await sp.chosen_image())
    assert "device_requests" not in specs.host_config_kwargs(spec)


async def test_per_user_gpus_through_a_callable() -> None:
    def only_staff(spawner: Any) -> dict[str, Any]:
        return {"berth/scipy-notebook:latest": 1} if spawner.user.name == "Alice" else {}

    sp = make_spawner(gpus=only_staff, image="berth/scipy-notebook:latest")
    spec = await sp._build_spec(await sp.chosen_image())
    assert spec.device_requests == (GpuRequest(1).device_request(),)


async def test_the_options_form_shows_the_gpus() -> None:
    form = await make_spawner(allowed_images=ALLOWED, gpus=GPUS).get_options_form()
    assert '<option value="PyTorch (GPU)">PyTorch (GPU) (with all GPUs)</option>' in form
    assert '<option value="Python">Python</option>' in form


async def test_a_bad_gpus_setting_fails_the_start_as_a_config_error() -> None:
    sp = make_spawner(gpus={"berth/base-notebook:latest": "lots"})
    with pytest.raises(SpawnException) as info:
        await sp._build_spec("berth/base-notebook:latest")
    assert info.value.reason == "config"
    assert "gpus['berth/base-notebook:latest']" in str(info.value)

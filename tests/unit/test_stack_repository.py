"""berth.images.provision: which references are the stack's own images."""

import pytest

from berth.images import provision


@pytest.mark.parametrize(
    ("image", "repository"),
    [
        ("berth/hub:latest", "berth/hub"),
        ("berth/base-notebook", "berth/base-notebook"),
        ("berth/base-notebook:1.2", "berth/base-notebook"),
        ("berth/nothing:latest", None),
        ("quay.io/jupyter/base-notebook:latest", None),
        ("127.0.0.1:5000/berth/hub:latest", None),
    ],
)
def test_stack_repository(image: str, repository: str | None) -> None:
    assert provision.stack_repository(image) == repository

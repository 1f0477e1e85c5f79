"""berth.images.provision against the real engine: which images `berth up` builds, and how
`berth run` gets its image (present: nothing; not Berth's and unpullable: one clear error).

Nothing is built or pulled from outside: the only pull goes to a closed port on loopback.
"""

from __future__ import annotations

from typing import Any

import pytest

from berth.errors import BerthError
from berth.images import catalog, provision


def test_to_build_names_missing_stack_images_only(docker_client: Any) -> None:
    missing = f"{catalog.DEFAULT_NOTEBOOK_IMAGE.repository}:berth-tidy-never-built"
    assert provision.to_build(docker_client, [missing, "127.0.0.1:1/not-berths:1"]) == [
        catalog.DEFAULT_NOTEBOOK_IMAGE.repository
    ]


def test_ensure_image_leaves_a_present_image_alone(docker_client: Any, berth_image: str) -> None:
    built: list[list[str]] = []
    said: list[str] = []
    provision.ensure_image(docker_client, berth_image, built.append, said.append)
    assert (built, said) == ([], [])


def test_ensure_image_builds_a_missing_stack_image(docker_client: Any) -> None:
    built: list[list[str]] = []
    image = f"{catalog.DEFAULT_NOTEBOOK_IMAGE.repository}:berth-tidy-never-built"
    provision.ensure_image(docker_client, image, built.append, lambda text: None)
    assert built == [[catalog.DEFAULT_NOTEBOOK_IMAGE.repository]]


def test_ensure_image_refuses_an_unpullable_image(docker_client: Any) -> None:
    built: list[list[str]] = []
    with pytest.raises(BerthError, match="cannot be pulled"):
        provision.ensure_image(
            docker_client, "127.0.0.1:1/berth-tidy/none:1", built.append, lambda text: None
        )
    assert built == []

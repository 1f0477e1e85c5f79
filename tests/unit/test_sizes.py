"""Byte sizes: one grammar (berth.sizes) for berth.yaml, the spawners and `berth run`."""

import pytest

from berth import sizes
from berth.config import ConfigError, config_from_data
from berth.run.spec import validate_memory
from berth.spawner.build import resources
from berth.spawner.errors import SpawnException

FORMS = [
    (1024 * 1024**2, 1024 * 1024**2),
    ("10000000", 10_000_000),
    ("512M", 512 * 1024**2),
    ("512m", 512 * 1024**2),
    ("2G", 2 * 1024**3),
    ("2GiB", 2 * 1024**3),
    ("2gib", 2 * 1024**3),
    (" 1.5G ", int(1.5 * 1024**3)),
    ("1T", 1024**4),
    ("1TiB", 1024**4),
    ("8192K", 8192 * 1024),
]
REFUSED = ["2GB", "2B", "2iB", "2i", "lots", "-1G", "G", "2 G B", "1.G", "9" * 400 + "G", True]


@pytest.mark.parametrize(("value", "expected"), FORMS)
def test_every_reader_accepts_the_same_forms(value, expected) -> None:
    assert sizes.parse_bytes(value) == expected
    assert config_from_data({"limits": {"memory": value}}).limits.memory == expected
    assert resources(value, None, mem_guarantee=value).mem_limit == expected
    assert resources(value, None, mem_guarantee=value).mem_guarantee == expected
    if isinstance(value, str):
        assert validate_memory(value) == expected


@pytest.mark.parametrize("value", REFUSED)
def test_every_reader_refuses_the_same_forms(value) -> None:
    with pytest.raises(ValueError, match=r"expected an integer number of bytes|less than 8388608T"):
        sizes.parse_bytes(value)
    with pytest.raises(ConfigError, match=r"limits\.memory"):
        config_from_data({"limits": {"memory": value}})
    with pytest.raises(SpawnException, match="resource limits"):
        resources(value, None)


def test_none_zero_and_limits() -> None:
    assert sizes.parse_bytes(None) is None
    assert sizes.parse_bytes(0) == 0
    assert sizes.parse_bytes(sizes.MAX_BYTES) == sizes.MAX_BYTES
    with pytest.raises(ValueError, match="8388608T"):
        sizes.parse_bytes(sizes.MAX_BYTES + 1)
    with pytest.raises(ValueError, match="negative"):
        sizes.parse_bytes(-1)
    assert sizes.parse_bytes(2.0 * 1024**3) == 2 * 1024**3

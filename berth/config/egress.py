"""The `egress:` section of berth.yaml: what user servers may open beyond Berth's network.

`berth up`'s firewall enforces it (berth/deploy/firewall.py); the hub's API on Berth's own
network stays reachable in every mode.
"""

from __future__ import annotations

import ipaddress
from typing import Annotated, Literal

from pydantic import BeforeValidator, Field, model_validator

from berth.config.base import Section
from berth.config.fields import FieldProblem, describe

EgressMode = Literal["public", "none", "all"]


def check_ipv4_network(value: object) -> str:
    """An IPv4 network (`10.1.2.0/24`) or address (`10.1.2.3`, meaning /32), as a CIDR."""
    if not isinstance(value, str):
        raise ValueError(f"expected an IPv4 network such as 10.1.2.0/24, got {describe(value)}")
    try:
        network = ipaddress.IPv4Network(value.strip(), strict=True)
    except ValueError as exc:
        raise ValueError(
            f"expected an IPv4 network such as 10.1.2.0/24 or an address, got {value!r} ({exc})"
        ) from None
    if network.prefixlen == 0:
        raise ValueError(f"{value!r} is every address: use egress.mode: all instead")
    return str(network)


IPv4Net = Annotated[str, BeforeValidator(check_ipv4_network)]


class EgressConfig(Section):
    mode: EgressMode = Field(
        "public",
        description="What user servers may open beyond Berth's network: `public` (the public "
        "internet, not private or reserved addresses: the LAN, CGNAT, link-local and cloud "
        "metadata services), `none` (nothing but the hub's API) or `all` (everything but "
        "link-local).",
    )
    allow: list[IPv4Net] = Field(
        [],
        description="IPv4 networks user servers may reach besides what `mode` allows (a "
        "package mirror or proxy on the LAN), e.g. `10.1.2.0/24`; with `public` or `none`.",
    )

    @model_validator(mode="after")
    def _allow_needs_a_limit(self) -> EgressConfig:
        if self.allow and self.mode == "all":
            raise FieldProblem(
                "allow", "has no effect with egress.mode: all (which reaches everything)"
            )
        return self

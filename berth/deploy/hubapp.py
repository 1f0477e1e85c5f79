"""The hub container's JupyterHub: JupyterHub as published, without importing every installed
plug-in at each start.

JupyterHub's application lists, for its command line and its help, every class registered under
its entry-point groups (authenticators, spawners, proxies), and loads each of them to do so. In
the hub image that is every OAuthenticator provider (with jwt, ruamel.yaml, …) and Berth's other
spawners: ~4 MiB of the idle hub and a part of every start (docs/deploy.md, "Hub memory"), for a
hub that runs one authenticator and one spawner. berth.deploy.hubinit starts this hub with
``-f <config>`` only, so that list serves nothing here; the configured classes are loaded as
always, through their entry-point names in the config file. `jupyterhub` itself is unchanged.
It also refuses the few modules listed in berth.deploy.hub_imports, which the hub never uses,
and waits for the engine guard and the proxy's API as berth.deploy.hub_waits says (the hub is
started beside them, so that its imports overlap their starts).
"""

from __future__ import annotations

import os

from berth.deploy import hub_imports, hub_waits

hub_imports.install()  # before JupyterHub's imports below: see berth.deploy.hub_imports

# isort: split
from jupyterhub import app  # noqa: E402
from jupyterhub.auth import Authenticator  # noqa: E402
from jupyterhub.crypto import CryptKeeper  # noqa: E402
from jupyterhub.spawner import Spawner  # noqa: E402
from traitlets import default  # noqa: E402


# The same class name as upstream: it names the config section (c.JupyterHub) and the logger, so
# the config file and the log read exactly as with `jupyterhub`.
class JupyterHub(app.JupyterHub):  # type: ignore[misc]  # JupyterHub is not typed
    @default("classes")
    def _classes_without_plugins(self) -> list[type]:
        """JupyterHub's own configurable classes, without the entry points' (see above)."""
        return [Spawner, Authenticator, CryptKeeper]

    async def init_spawners(self) -> None:
        """Started beside the engine guard (berth.deploy.swap): wait for its socket before
        JupyterHub polls the user servers through it."""
        if not await hub_waits.engine(os.environ.get("DOCKER_HOST", "")):
            self.log.warning("the engine guard did not answer; polling user servers anyway")
        await super().init_spawners()

    async def start(self) -> None:
        if not self.proxy.should_start:  # berth-proxy: ask for its API sooner than JupyterHub
            await hub_waits.proxy_api(getattr(self.proxy, "api_url", ""))
        await super().start()
        if os.environ.get("BERTH_TLS_ACME"):  # berth-acme's failures in this log too
            from berth.deploy import acme_log, layout

            self._acme_log = acme_log.start(
                self.log, layout.proxy_dir() / layout.ACME_STATUS_FOR_HUB
            )


def main() -> None:
    JupyterHub.launch_instance()


if __name__ == "__main__":
    main()

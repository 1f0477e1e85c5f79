"""What every Berth spawner back end shares, whatever runs the servers.

:class:`BerthSpawner` is a JupyterHub ``Spawner`` holding the parts that do not depend on the
back end: names and templates, the options form and the allow-list of images, progress events,
turning failures into messages for the user, the state kept in the hub's database, the resolved
resource limits, and the volume policy (which existing volume may be mounted for whom). A back
end subclasses it and implements :meth:`BerthSpawner._start` plus JupyterHub's ``stop`` /
``poll`` (and ``get_url`` if its servers move), using :attr:`BerthSpawner.engine` -- any object
with the :class:`~berth.spawner.engine_api.EngineAPI` operations it needs -- and the pure builders
(:mod:`.build`, :mod:`.specs`) fed with :meth:`BerthSpawner.spec_inputs`.
"""

from __future__ import annotations

import inspect
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any, ClassVar

from jupyterhub.spawner import Spawner
from traitlets import default

from berth import names
from berth.labels import LABEL_SNAPSHOT_PREFIX

from . import errors, gpus, images, specs
from .build import LIMIT_ENV, SpecInputs, resources
from .engine_api import DockerEngine, EngineAPI, EngineRecord
from .errors import SpawnException
from .progress import ProgressEvent, ProgressLog
from .settings import ContainerSettings
from .volumes import prepare_volumes


async def resolve(value: Any, spawner: Spawner) -> Any:
    """The usual JupyterHub pattern: a setting may be a callable of the spawner (maybe async)."""
    if callable(value):
        value = value(spawner)
        if inspect.isawaitable(value):
            value = await value
    return value


def account_key(user: Any) -> tuple[str, str]:
    """(JupyterHub's user id, the account's creation time as UTC ISO seconds), "" if unknown.

    Together they tell a user deleted and created again under the same name (the database may
    even reuse the id) from the old account."""
    user_id = getattr(user, "id", None)
    created = getattr(user, "created", None)
    if isinstance(created, datetime):
        if created.tzinfo is not None:
            created = created.astimezone(UTC).replace(tzinfo=None)
        created_text = created.replace(microsecond=0).isoformat()
    else:
        created_text = ""
    return ("" if user_id is None else str(user_id)), created_text


class BerthSpawner(ContainerSettings, Spawner):
    """The base of Berth's spawners (see the module docstring); not usable on its own."""

    # Attributes (str) saved in the hub's database and restored after a hub restart.
    state_fields: ClassVar[tuple[str, ...]] = ()

    @default("ip")
    def _default_ip(self) -> str:
        return "0.0.0.0"

    @default("port")
    def _default_port(self) -> int:
        return 8888

    @default("cmd")
    def _default_cmd(self) -> None:
        return None  # the image's CMD (start-notebook.py -> jupyterhub-singleuser)

    @default("start_timeout")
    def _default_start_timeout(self) -> int:
        return 120

    @default("options_from_form")
    def _default_options_from_form(self) -> Any:
        return images.options_from_form

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._progress = ProgressLog()
        self._starting = False
        self._engine: EngineAPI | None = None

    # -- the engine -----------------------------------------------------------------------------
    @property
    def engine(self) -> EngineAPI:
        """The engine this spawner talks to, made on first use by :meth:`make_engine`."""
        if self._engine is None:
            self._engine = self.make_engine()
        return self._engine

    @engine.setter
    def engine(self, value: EngineAPI) -> None:
        self._engine = value

    def make_engine(self) -> EngineAPI:
        return DockerEngine(self.docker_url, self.engine_threads, self.engine_timeout)

    # -- names and templates --------------------------------------------------------------------
    @property
    def identity(self) -> specs.Identity:
        user_id, created = account_key(self.user)
        return specs.Identity(
            self.user.name, self.name or "", type(self).__name__, self.prefix, user_id, created
        )

    def template_namespace(self) -> dict[str, str]:
        """Escaped names (see :mod:`berth.names`) plus JupyterHub's ``base_url``."""
        namespace = names.template_namespace(self.prefix, self.user.name, self.name or "")
        if self.server:
            namespace["base_url"] = self.server.base_url
        return namespace

    def format_string(self, s: str) -> str:
        return names.render(s, self.template_namespace())

    # -- state ----------------------------------------------------------------------------------
    def get_state(self) -> dict[str, Any]:
        state: dict[str, Any] = super().get_state()
        if self.state_fields and getattr(self, self.state_fields[0], None):
            state.update({key: getattr(self, key) for key in self.state_fields})
        return state

    def load_state(self, state: dict[str, Any]) -> None:
        super().load_state(state)
        for key in self.state_fields:
            setattr(self, key, state.get(key, ""))

    def clear_state(self) -> None:
        super().clear_state()
        for key in self.state_fields:
            setattr(self, key, "")
        # JupyterHub calls this before each start, possibly after the progress stream of the new
        # spawn was opened: start that stream on a fresh log, not the last spawn's events.
        self._progress.reset()

    def get_env(self) -> dict[str, str]:
        """JupyterHub's environment; the limits are added from their resolved values by
        :func:`~berth.spawner.build.limit_env` (the settings may be callables)."""
        env: dict[str, str] = super().get_env()
        for key in LIMIT_ENV:
            env.pop(key, None)
        return env

    # -- options form and allowed images --------------------------------------------------------
    async def allowed_image_map(self, *, snapshots: bool = True) -> dict[str, str]:
        """Display name -> image of what this user may start: ``allowed_images`` and, with
        ``snapshots``, the user's snapshots (``snapshot_images``)."""
        allowed = images.normalize_allowed(await resolve(self.allowed_images, self))
        if snapshots and self.snapshot_images:
            # One listing of this deployment's snapshots, by the prefix label the engine guard
            # allows; snapshot_choices keeps the user's own and those shared with them.
            # (Filtering by owner in the engine too would save little, and Podman 4.3 answers
            # an image listing filtered by two labels with nothing.) An image listing costs the
            # engine time for every image it holds (0.4-0.6 s with 150 images on a busy
            # engine), and it is on the way from the login to JupyterLab. What is offered here
            # is also all chosen_image() accepts.
            found = await self.engine.list_images({LABEL_SNAPSHOT_PREFIX: self.prefix})
            choices = images.snapshot_choices(found, self.user.name, self.prefix)
            if choices:  # the default stays the default, and a choice
                allowed = {**(allowed or {self.image: self.image}), **choices}
        return allowed

    def image_requested(self) -> bool:
        """Whether the user chose an image. A snapshot is only ever a choice, never the default,
        so a start without one need not look for snapshots (images.choose_image and
        gpus.request_for answer the same without them)."""
        return self.user_options.get("image") not in (None, "")

    async def get_options_form(self) -> str:
        if self.options_form:
            return str(await super().get_options_form())
        allowed = await self.allowed_image_map()
        labels = gpus.form_labels(allowed, await self.gpu_requests())
        return images.options_form_html(allowed, self.image, labels)

    async def gpu_requests(self) -> dict[str, gpus.GpuRequest]:
        """The ``gpus`` setting (resolved if callable), checked: a bad entry fails the start."""
        try:
            return gpus.parse_all(await resolve(self.gpus, self) or {})
        except ValueError as exc:
            raise errors.bad_config(str(exc)) from exc

    async def device_requests(self, image: str) -> list[dict[str, Any]]:
        """The engine device requests of the server about to start from ``image``."""
        request = gpus.request_for(
            await self.gpu_requests(),
            await self.allowed_image_map(snapshots=self.image_requested()),
            self.user_options.get("image"),
            image,
        )
        return [request.device_request()] if request else []

    async def chosen_image(self) -> str:
        """The image to run: the user's choice if allowed, else refused with a 403."""
        return images.choose_image(
            self.image,
            await self.allowed_image_map(snapshots=self.image_requested()),
            self.user_options.get("image"),
        )

    # -- progress -------------------------------------------------------------------------------
    async def progress(self) -> AsyncIterator[ProgressEvent]:
        async for event in self._progress.follow():
            yield event

    def report(self, event: ProgressEvent) -> None:
        self._progress.add(event)

    # -- start, with failures translated for the user -------------------------------------------
    async def start(self) -> Any:
        self._starting = True
        if self._progress.closed:  # not already fresh from clear_state()
            self._progress.reset()
        try:
            return await self._start()
        except SpawnException:
            raise
        except Exception as exc:
            translated = errors.translate("start the server", exc)
            if translated is None:
                raise
            raise translated from exc
        finally:
            self._starting = False
            self._progress.close()

    async def _start(self) -> Any:
        """The back end's start; failures it raises reach the user through :meth:`start`."""
        raise NotImplementedError

    async def stop(self, now: bool = False) -> None:
        raise NotImplementedError  # the back end's

    async def poll(self) -> int | None:
        raise NotImplementedError  # the back end's

    # -- plain inputs for the pure builders -----------------------------------------------------
    async def resolved_resources(self) -> specs.Resources:
        return resources(
            await resolve(self.mem_limit, self),
            await resolve(self.cpu_limit, self),
            self.pids_limit,
            self.mem_guarantee,
            self.cpu_guarantee,
        )

    def networking(self) -> specs.Networking:
        return specs.Networking(
            port=self.port,
            network_name=self.network_name,
            use_internal_ip=self.use_internal_ip,
            host_ip=self.host_ip,
        )

    async def spec_inputs(self, image: str) -> SpecInputs:
        """This spawner's settings for ``image``, callables resolved, as plain values."""
        return SpecInputs(
            image=image,
            identity=self.identity,
            namespace=self.template_namespace(),
            name_template=self.name_template,
            environment=self.get_env(),
            resources=await self.resolved_resources(),
            networking=self.networking(),
            volumes=self.volumes,
            read_only_volumes=self.read_only_volumes,
            command=[*self.cmd, *self.get_args()] if self.cmd else None,
            run_as_root=self.run_as_root,
            extra_create_kwargs=await resolve(self.extra_create_kwargs, self) or {},
            extra_host_config=await resolve(self.extra_host_config, self) or {},
            device_requests=await self.device_requests(image),
        )

    # -- volumes --------------------------------------------------------------------------------
    async def prepare_volumes(
        self,
        spec: specs.ContainerSpec,
        image_info: EngineRecord,
    ) -> list[str]:
        """Check existing volumes are this user's (:mod:`.volume_policy`), create the rest."""
        return await prepare_volumes(
            self.engine,
            spec,
            image_info,
            self.volume_init_timeout,
            self.report,
            self.log,
            self.adopt_unlabelled_volumes,
        )

    async def delete_forever(self) -> None:
        """Named volumes are the users' data: Berth never deletes them on its own.

        They stay labelled with this account's id and creation time (:func:`account_key`), so a
        new account of the same name is refused them with a message for the administrator,
        never handed them."""
        try:
            mounts = specs.mounts_from_config(
                self.volumes, self.read_only_volumes, self.template_namespace()
            )
        except (names.InvalidNameError, ValueError):
            mounts = []
        kept = [m.source for m in mounts if m.per_user and not m.is_host_path]
        self.log.warning(
            "Deleted %s (account %s); keeping its volumes %s. A new account of that name will "
            "not get them: remove them, or copy their files, to decide what becomes of them.",
            self._log_name,
            "/".join(account_key(self.user)) or "?",
            ", ".join(kept) or "(none)",
        )

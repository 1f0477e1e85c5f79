"""Resolve what a validated berth.yaml points at: files, the environment, relative paths.

After this step the config is self-contained: every path is absolute, the userlist's names
are merged into ``users``, OAuth credentials are filled in, and service tokens read from their
files are held as ``token`` (``token_file`` is cleared). This is the only I/O of the config
layer besides reading berth.yaml, so the translator downstream can stay pure.

OAuth credentials are looked up in this order: berth.yaml, the environment, ``env_file``.
"""

from __future__ import annotations

import stat
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import SecretStr

from berth.config.auth import OAuthClient
from berth.config.envfile import EnvFileError, parse_env_file
from berth.config.errors import Problem
from berth.config.schema import BerthConfig
from berth.config.services import check_token
from berth.config.userlist import UserlistError, parse_userlist


class ResolveError(Exception):
    """Problems found while resolving; the loader turns them into a ConfigError."""

    def __init__(self, problems: list[Problem]) -> None:
        super().__init__("; ".join(p.message for p in problems))
        self.problems = problems


def resolve_config(cfg: BerthConfig, base_dir: Path, environ: Mapping[str, str]) -> BerthConfig:
    resolver = _Resolver(base_dir, environ)
    data = resolver.run(cfg)
    if resolver.problems:
        raise ResolveError(resolver.problems)
    return BerthConfig.model_validate(data)


class _Resolver:
    def __init__(self, base_dir: Path, environ: Mapping[str, str]) -> None:
        self.base_dir = base_dir
        self.environ = environ
        self.problems: list[Problem] = []

    def fail(self, key: str, message: str) -> None:
        self.problems.append(Problem(key, message))

    def path(self, value: Path) -> Path:
        path = value.expanduser()
        return path if path.is_absolute() else (self.base_dir / path).absolute()

    def read(self, key: str, value: Path, *, secret: bool = False) -> str | None:
        """Read a file the config names; None (and a problem recorded) if unusable."""
        path = self.path(value)
        try:
            info = path.stat()
            if not stat.S_ISREG(info.st_mode):
                self.fail(key, f"{path} is not a regular file")
                return None
            if secret and info.st_mode & 0o077:
                mode = stat.S_IMODE(info.st_mode)
                self.fail(
                    key,
                    f"{path} is mode {mode:04o}: a secret file must be readable by "
                    f"its owner only (mode 600); run: chmod 600 {path}",
                )
                return None
            return path.read_text(encoding="utf-8")
        except FileNotFoundError:
            self.fail(key, f"file not found: {path}")
        except PermissionError:
            self.fail(key, f"cannot read {path}: permission denied")
        except UnicodeDecodeError:
            self.fail(key, f"{path} is not UTF-8 text")
        except OSError as exc:
            self.fail(key, f"cannot read {path}: {exc.strerror}")
        return None

    def run(self, cfg: BerthConfig) -> dict[str, Any]:
        data = cfg.model_dump()  # python mode: SecretStr and Path values stay as they are
        for name in ("cert", "key"):
            value = getattr(cfg.tls, name)
            if value is not None and self.read(f"tls.{name}", value) is not None:
                data["tls"][name] = self.path(value)
        ca = cfg.tls.acme.directory_ca if cfg.tls.acme else None
        if ca is not None and self.read("tls.acme.directory_ca", ca) is not None:
            data["tls"]["acme"]["directory_ca"] = self.path(ca)
        self.users(cfg, data)
        if (oauth := cfg.auth.oauth) is not None:
            data["auth"][cfg.auth.type] = self.oauth(f"auth.{cfg.auth.type}", oauth)
        for index, service in enumerate(cfg.services):
            if service.token_file is None:
                continue
            key = f"services[{index}].token_file"
            text = self.read(key, service.token_file, secret=True)
            if text is None:
                continue
            try:
                token = check_token(text.strip())
            except ValueError as exc:
                self.fail(key, f"{self.path(service.token_file)}: {exc}")
                continue
            data["services"][index].update(token=SecretStr(token), token_file=None)
        return data

    def users(self, cfg: BerthConfig, data: dict[str, Any]) -> None:
        if cfg.users.userlist_file is None:
            return
        path = self.path(cfg.users.userlist_file)
        text = self.read("users.userlist_file", path)
        if text is None:
            return
        try:
            entries = parse_userlist(text, str(path))
        except UserlistError as exc:
            self.fail("users.userlist_file", str(exc))
            return
        users = data["users"]
        users["userlist_file"] = path
        users["allowed"] = [*users["allowed"], *(e.name for e in entries)]
        users["admins"] = [*users["admins"], *(e.name for e in entries if e.admin)]

    def oauth(self, key: str, section: OAuthClient) -> dict[str, Any]:
        data = section.model_dump()
        from_file: dict[str, str] = {}
        file_ok = True
        if section.env_file is not None:
            data["env_file"] = self.path(section.env_file)
            text = self.read(f"{key}.env_file", section.env_file, secret=True)
            file_ok = text is not None
            try:
                from_file = parse_env_file(text or "", str(data["env_file"]))
            except EnvFileError as exc:
                self.fail(f"{key}.env_file", str(exc))
                file_ok = False
        for field, env_name in section.ENV.items():
            if data[field] is not None:
                continue
            value: str | SecretStr | None = (
                self.environ.get(env_name) or from_file.get(env_name) or None
            )
            if isinstance(value, str) and field == "client_secret":
                value = SecretStr(value)
            data[field] = value
            # A broken env_file is reported once, not again as each value it should hold.
            if value is None and field != "callback_url" and file_ok:
                self.fail(
                    f"{key}.{field}",
                    f"missing: set it here, in the environment "
                    f"variable {env_name}, or in {key}.env_file",
                )
        return data

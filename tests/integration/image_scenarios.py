"""The container scenarios of the image-startup tests: each one `docker run` of the image under
test (environment, user, command, files, mounts), by name."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Scenario:
    """How to run one container. server=True: wait for a Jupyter server; else: for its exit."""

    env: dict[str, str] = field(default_factory=dict)
    user: str | None = None
    command: list[str] | None = None
    server: bool = True
    port: int = 8888
    token: str | None = None  # known token (set through NOTEBOOK_ARGS); else read from the log
    healthcheck: bool = False  # keep the image's HEALTHCHECK (off elsewhere: it costs CPU)
    files: dict[str, tuple[str, int]] = field(default_factory=dict)  # path: (text, mode)
    bind_work: bool = False  # bind-mount a fresh host directory at /home/jovyan/work


def sh(script: str) -> list[str]:
    return ["bash", "-c", script]


def hook_files(directory: str, hooks: dict[str, tuple[str, int]]) -> dict[str, tuple[str, int]]:
    return {f"/usr/local/bin/{directory}/{name}": spec for name, spec in hooks.items()}


HOOKS = {
    **hook_files(
        "start-notebook.d",
        {
            "10-first.sh": (
                'echo "hook 10-first.sh as $(id -u)"\nexport HOOK_VALUE=exported\n',
                0o644,
            ),
            "20-second": ('#!/bin/sh\necho "hook 20-second as $(id -u)"\n', 0o755),
            "30-notes.txt": ("echo this must not run\n", 0o644),
        },
    ),
    **hook_files(
        "before-notebook.d",
        {"10-before.sh": ('echo "hook 10-before.sh as $(id -u) sees $HOOK_VALUE"\n', 0o644)},
    ),
}
FAILING_HOOKS = hook_files(
    "start-notebook.d",
    {
        "10-ok.sh": ('echo "hook 10-ok.sh"\n', 0o644),
        "20-broken.sh": ('echo "hook 20-broken.sh"\nfalse\n', 0o644),
        "30-after.sh": ('echo "hook 30-after.sh"\n', 0o644),
    },
)
FAILING_EXECUTABLE_HOOK = hook_files(
    "before-notebook.d", {"50-exits-7": ("#!/bin/sh\nexit 7\n", 0o755)}
)

# (variable, value, run as root?) that must stop the start, naming the variable.
BAD_VALUES = [
    ("NB_UID", "abc", True),
    ("NB_GID", "1x", True),
    ("NB_USER", "Bad User", True),
    ("NB_UMASK", "999", False),
    ("JUPYTER_PORT", "70000", False),
    ("JUPYTER_PORT", "http", False),
    ("NB_UID", "12.5", False),
]
# Checked later, by start-notebook.py (the command), still before any server starts.
BAD_SERVER_VALUES = [
    ("DOCKER_STACKS_JUPYTER_CMD", "lab --debug"),
    ("DOCKER_STACKS_JUPYTER_CMD", "nosuchapp"),
    ("NOTEBOOK_ARGS", "--ServerApp.base_url='/unbalanced"),
]

ROOT_IDS = {"NB_UID": "1234", "NB_GID": "2345"}

# What Podman writes into /etc/passwd before the start for a numeric --user the image does not
# know (its default --passwd; docs/podman.md): a hook writes the same on Docker, where the engine
# does not, so both engines start the command with that entry in place. The lines around it are
# kept for comparison.
ENGINE_ENTRY_HOOK = hook_files(
    "start-notebook.d",
    {
        "00-engine-entry.sh": (
            "grep -v '^1234:' /etc/passwd >/tmp/passwd-others\n"
            "getent passwd 1234 >/dev/null ||\n"
            "    echo '1234:*:1234:0:container user:/home/jovyan:/bin/sh' >>/etc/passwd\n",
            0o644,
        )
    },
)
# An image's own account named after its uid (Debian's useradd accepts all-digit names): in the
# image before the start, so no engine adds an entry, and with a shadow password ('x').
ACCOUNT_NAMED_UID_PASSWD = (
    "root:x:0:0:root:/root:/bin/bash\n"
    "jovyan:x:1000:100::/home/jovyan:/bin/bash\n"
    "1234:x:1234:0:an account:/home/jovyan:/bin/bash\n"
)

SCENARIOS: dict[str, Scenario] = {
    # Servers.
    "default": Scenario(healthcheck=True),
    "https": Scenario(env={"GEN_CERT": "yes"}, healthcheck=True),
    "root-ids-bind": Scenario(user="root", env=ROOT_IDS, bind_work=True),
    "renamed": Scenario(user="root", env={"NB_USER": "berthuser"}, healthcheck=True),
    "arbitrary-uid": Scenario(user="1234", healthcheck=True),
    "port-base-url": Scenario(
        env={
            "JUPYTER_PORT": "9999",
            "NOTEBOOK_ARGS": "--ServerApp.base_url=/berth/"
            " --IdentityProvider.token=berth-test-token",
        },
        port=9999,
        token="berth-test-token",
        healthcheck=True,
    ),
    "explicit-root-server": Scenario(user="root", env={"NB_USER": "root", "NB_UID": "0"}),
    # Through the compatibility wrapper start-notebook.sh.
    "cmd-server": Scenario(
        env={"DOCKER_STACKS_JUPYTER_CMD": "server"}, command=["start-notebook.sh"]
    ),
    "cmd-notebook": Scenario(env={"DOCKER_STACKS_JUPYTER_CMD": "notebook"}),
    "restartable": Scenario(env={"RESTARTABLE": "yes"}),
    # Commands that run to completion.
    "singleuser": Scenario(
        server=False,
        env={
            "JUPYTERHUB_API_TOKEN": "not-a-real-token",
            "JUPYTERHUB_SERVICE_URL": "http://0.0.0.0:8888/user/tester/",
            "JUPYTERHUB_API_URL": "http://127.0.0.1:1/hub/api",
        },
    ),
    # What DockerSpawner configs written for docker-stacks run.
    "singleuser-sh": Scenario(
        server=False,
        command=["start-singleuser.sh", "--debug"],
        env={
            "JUPYTERHUB_API_TOKEN": "not-a-real-token",
            "JUPYTERHUB_SERVICE_URL": "http://0.0.0.0:8888/user/tester/",
            "JUPYTERHUB_API_URL": "http://127.0.0.1:1/hub/api",
            "NOTEBOOK_ARGS": "--ServerApp.log_level=DEBUG",
        },
    ),
    "root-drops-privileges": Scenario(
        server=False, user="root", command=sh('id -u; whoami; echo "HOME=$HOME"; pwd')
    ),
    "explicit-root": Scenario(
        server=False,
        user="root",
        env={"NB_USER": "root", "NB_UID": "0"},
        command=sh('id -u; echo "HOME=$HOME"; getent passwd root'),
    ),
    "renamed-cmd": Scenario(
        server=False,
        user="root",
        env={"NB_USER": "berthuser"},
        command=sh('whoami; echo "HOME=$HOME"; pwd; readlink ~; touch ~/probe && echo ok'),
    ),
    "sudo-granted": Scenario(
        server=False, user="root", env={"GRANT_SUDO": "yes"}, command=sh("sudo -n id -u")
    ),
    "sudo-refused": Scenario(server=False, user="root", command=sh("sudo -n true")),
    "sudo-not-root": Scenario(server=False, env={"GRANT_SUDO": "yes"}, command=sh("sudo -n true")),
    "chown-home": Scenario(
        server=False,
        user="root",
        env={**ROOT_IDS, "CHOWN_HOME": "yes", "CHOWN_HOME_OPTS": "-R"},
        command=sh("stat -c %u:%g /home/jovyan /home/jovyan/work"),
    ),
    "no-chown-home": Scenario(
        server=False,
        user="root",
        env=ROOT_IDS,
        command=sh("stat -c %u:%g /home/jovyan; id -u; id -g; touch ~/probe && echo writable"),
    ),
    "chown-extra": Scenario(
        server=False,
        user="root",
        env={
            **ROOT_IDS,
            "NB_GROUP": "berthgroup",
            "CHOWN_EXTRA": "/srv,/mnt",
            "CHOWN_EXTRA_OPTS": "-R",
        },
        command=sh("stat -c %u:%g /srv /mnt; id -gn"),
    ),
    "ignored-switches": Scenario(
        server=False,
        env={
            "NB_UID": "2000",
            "NB_GID": "3000",
            "NB_USER": "alice",
            "NB_GROUP": "team",
            "CHOWN_HOME": "yes",
            "CHOWN_EXTRA": "/srv",
            "GRANT_SUDO": "1",
        },
        command=sh("id -u"),
    ),
    "umask": Scenario(
        server=False,
        user="root",
        env={"NB_UMASK": "002"},
        command=sh("cd /tmp && touch f && mkdir d && stat -c %a f d"),
    ),
    "env-unset": Scenario(
        server=False,
        env={
            "SECRET_A": "a",
            "SECRET_B": "b",
            "KEPT_C": "c",
            "JUPYTER_ENV_VARS_TO_UNSET": "SECRET_A, SECRET_B",
        },
        command=sh("env"),
    ),
    "arbitrary-uid-cmd": Scenario(
        server=False,
        user="1234",
        command=sh('whoami; echo "HOME=$HOME"; touch "$HOME/probe" && echo home-writable'),
    ),
    "engine-entry-uid-cmd": Scenario(
        server=False,
        user="1234",
        files=ENGINE_ENTRY_HOOK,
        command=sh(
            "whoami; getent passwd 1234; grep -c '^[^:]*:[^:]*:1234:' /etc/passwd;"
            ' stat -c "%a %U:%G" /etc/passwd;'
            " grep -v ':1234:' /etc/passwd | cmp -s - /tmp/passwd-others && echo others-kept"
        ),
    ),
    "account-named-uid-cmd": Scenario(
        server=False,
        user="1234",
        files={"/etc/passwd": (ACCOUNT_NAMED_UID_PASSWD, 0o664)},
        command=sh("whoami; getent passwd 1234"),
    ),
    "hooks": Scenario(
        server=False, user="root", files=HOOKS, command=sh('echo "command sees $HOOK_VALUE"')
    ),
    "hook-fails": Scenario(server=False, files=FAILING_HOOKS, command=sh("echo command ran")),
    "executable-hook-fails": Scenario(
        server=False, files=FAILING_EXECUTABLE_HOOK, command=sh("echo command ran")
    ),
    **{
        f"bad-{name}-{i}": Scenario(server=False, user="root" if root else None, env={name: value})
        for i, (name, value, root) in enumerate(BAD_VALUES)
    },
    **{
        f"bad-server-{name}-{i}": Scenario(server=False, env={name: value})
        for i, (name, value) in enumerate(BAD_SERVER_VALUES)
    },
}

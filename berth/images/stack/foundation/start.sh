#!/bin/bash
# Entrypoint of every Berth image (tini runs it: ENTRYPOINT ["tini", "-g", "--", "start.sh"]).
#
#   start.sh [COMMAND ARGS...]        (COMMAND defaults to bash)
#
# 1. Checks the settings (NB_USER, NB_UID, NB_GID, NB_GROUP, NB_UMASK, JUPYTER_PORT) and stops with a
#    one-line message naming the bad variable before anything has changed.
# 2. Runs the hooks in /usr/local/bin/start-notebook.d as the user the container started as.
# 3. Started as root (`docker run --user root`): fits the image's user (jovyan) to NB_USER, NB_UID,
#    NB_GID and NB_GROUP, gives it /home/$NB_USER (a link to the image's home), honours CHOWN_HOME,
#    CHOWN_EXTRA and GRANT_SUDO, then drops to that user. Root is kept only when asked for with
#    NB_USER=root or NB_UID=0.
#    Started as anyone else: warns about each root-only setting it has to ignore, registers an
#    unknown UID in /etc/passwd and makes sure HOME is writable.
# 4. Applies NB_UMASK, runs /usr/local/bin/before-notebook.d (as root when started as root), unsets
#    the variables named in JUPYTER_ENV_VARS_TO_UNSET and execs the command, keeping the rest of the
#    environment (PATH with the venv included).
#
# The switches, hook directories and log lines are those of jupyter/docker-stacks, so images,
# hooks, spawners and log searches written for those images work unchanged (docker-stacks' own
# foundation tests run against this image: scripts/conformance.sh). Where Berth differs on
# purpose, docs/images.md says so and why.
# shellcheck source-path=SCRIPTDIR
set -e

readonly START_HOOKS=/usr/local/bin/start-notebook.d
readonly BEFORE_HOOKS=/usr/local/bin/before-notebook.d
readonly RUN_HOOKS=/usr/local/bin/run-hooks.sh
# The user the image was built with; start.sh renames it when NB_USER asks for another name.
readonly IMAGE_USER=jovyan
readonly IMAGE_HOME=/home/jovyan

# Log lines: "LEVEL[YYYY-MM-DD HH:MM:SS] message" on stderr (_log_info, _log_warn, _log_error,
# _log_fatal), shared with run-hooks.sh and hooks. JUPYTER_DOCKER_STACKS_QUIET hides INFO lines.
# shellcheck source=_docker_stacks_log.sh
source /usr/local/bin/_docker_stacks_log.sh
_log_info "Entered start.sh with args:" "$@"

# docker-stacks switches accept "yes" and "1"; "true" and "on" are accepted too.
_berth_is_true() {
    case "${1,,}" in
        1 | yes | true | on) return 0 ;;
        *) return 1 ;;
    esac
}

# Runs a command quietly (useradd & co. chatter about mail spools) but shows its output if it fails.
_berth_quiet() {
    local output
    if ! output="$("$@" 2>&1)"; then
        _log_fatal "'$*' failed: ${output}"
    fi
}

# Checks every setting start.sh or the server will use, so that a typo stops the container with a
# message naming the variable instead of a half-configured user or a server on the wrong port.
_berth_validate() {
    local name="${NB_USER-}" value
    [[ "${name}" =~ ^[a-z_][a-z0-9_-]{0,31}$ ]] ||
        _log_fatal "NB_USER='${name}' is not a valid user name: use 1-32 lower-case letters, digits, '_' or '-', starting with a letter or '_'"
    if [ -n "${NB_GROUP:-}" ] && ! [[ "${NB_GROUP}" =~ ^[a-z_][a-z0-9_-]{0,31}$ ]]; then
        _log_fatal "NB_GROUP='${NB_GROUP}' is not a valid group name: use 1-32 lower-case letters, digits, '_' or '-', starting with a letter or '_'"
    fi
    for name in NB_UID NB_GID; do
        value="${!name-}"
        # 4294967295 is (uid_t)-1, which means "no change" to the kernel.
        if ! [[ "${value}" =~ ^[0-9]{1,10}$ ]] || ((10#${value} > 4294967294)); then
            _log_fatal "${name}='${value}' is not a numeric id: use a number from 0 to 4294967294"
        fi
    done
    if [ -n "${JUPYTER_PORT+set}" ]; then
        value="${JUPYTER_PORT}"
        if ! [[ "${value}" =~ ^[0-9]{1,5}$ ]] || ((10#${value} < 1 || 10#${value} > 65535)); then
            _log_fatal "JUPYTER_PORT='${value}' is not a TCP port: use an integer from 1 to 65535"
        fi
    fi
    if [ -n "${NB_UMASK+set}" ] && ! [[ "${NB_UMASK}" =~ ^[0-7]{1,4}$ ]]; then
        _log_fatal "NB_UMASK='${NB_UMASK}' is not an octal umask: use 1-4 octal digits, e.g. 002 or 0022"
    fi
}

# The command, defaulting to an interactive shell like docker-stacks.
if [ "$#" -eq 0 ]; then
    set -- bash
fi

# A CMD written for older images may run start.sh again (CMD ["start.sh", "jupyter", "lab"]):
# everything below has been done already, and as the unprivileged user it could not be redone.
if [ "${_START_SH_EXECUTED:-}" = 1 ]; then
    _log_warn "start.sh is the default ENTRYPOINT, do not include it in CMD"
    _log_info "Executing the command:" "$@"
    exec "$@"
fi
export _START_SH_EXECUTED=1

: "${NB_USER:=${IMAGE_USER}}" "${NB_UID:=1000}" "${NB_GID:=100}"
export NB_USER NB_UID NB_GID
_berth_validate

# Sourced, so that *.sh hooks can export variables or change the NB_* settings for what follows.
# shellcheck source=run-hooks.sh
source "${RUN_HOOKS}" "${START_HOOKS}"
# Those hooks could have changed the settings: check them again before acting on them.
_berth_validate

# Gives the user a home at /home/$1, where passwd says it is. The image's home is linked there,
# not moved or copied: on the image's overlay filesystem a move is a full copy into the
# container's layer, mounts inside it (a volume at /home/jovyan/work) would not follow, and the
# image's WORKDIR, where `docker exec` and so the HEALTHCHECK start, must stay valid.
_berth_relocate_home() {
    local home="/home/$1"
    if [ "${home}" = "${IMAGE_HOME}" ]; then
        return 0
    fi
    if [ -e "${home}" ] || [ -L "${home}" ]; then
        : # a mounted volume, or made by an earlier start of this container
    elif [ -d "${IMAGE_HOME}" ]; then
        ln -s "${IMAGE_HOME}" "${home}"
        _log_info "Linked ${home} to ${IMAGE_HOME}"
    else
        mkdir -p "${home}"
        chown "${NB_UID}:${NB_GID}" "${home}"
    fi
    # The working directory (WORKDIR or docker run -w) follows the home.
    if [ "${PWD}" = "${IMAGE_HOME}" ] || [[ "${PWD}" == "${IMAGE_HOME}/"* ]]; then
        _log_info "Changing working directory to ${home}${PWD#"${IMAGE_HOME}"}"
        cd "${home}${PWD#"${IMAGE_HOME}"}" || _log_warn "staying in ${PWD}"
    fi
}

# Makes a group with gid NB_GID exist, named NB_GROUP when given (else NB_USER, if that is free).
# Existing groups are never renumbered: the image's files belong to them.
_berth_ensure_group() {
    local name="${NB_GROUP:-${NB_USER}}" existing
    existing="$(getent group "${name}" | cut -d: -f3)"
    if [ -n "${existing}" ]; then
        if [ "${existing}" != "${NB_GID}" ] && [ -n "${NB_GROUP:-}" ]; then
            _log_warn "group ${NB_GROUP} already exists with gid ${existing}: NB_GID=${NB_GID} is used without that name"
        fi
    elif [ -n "${NB_GROUP:-}" ] || ! getent group "${NB_GID}" >/dev/null; then
        # --non-unique: NB_GROUP may name a gid that already has a name.
        _berth_quiet groupadd --non-unique --gid "${NB_GID}" "${name}"
    fi
}

# Renames and renumbers the image's user as NB_USER / NB_UID / NB_GID asked.
_berth_fit_user() {
    if getent passwd "${IMAGE_USER}" >/dev/null; then
        if [ "${NB_USER}" != "${IMAGE_USER}" ]; then
            getent passwd "${NB_USER}" >/dev/null &&
                _log_fatal "NB_USER=${NB_USER} is an account of the image already; choose another name"
            _berth_quiet usermod --login "${NB_USER}" --home "/home/${NB_USER}" "${IMAGE_USER}"
            _log_info "Updated the ${IMAGE_USER} user:"
            _log_info "- username: ${IMAGE_USER}       -> ${NB_USER}"
            _log_info "- home dir: ${IMAGE_HOME} -> /home/${NB_USER}"
        fi
    elif ! getent passwd "${NB_USER}" >/dev/null; then
        _log_fatal "Neither the ${IMAGE_USER} user nor '${NB_USER}' exists: was this container first started with another NB_USER?"
    fi

    if [ "${NB_UID}" != "$(id -u "${NB_USER}")" ] || [ "${NB_GID}" != "$(id -g "${NB_USER}")" ]; then
        # Re-creating the account, rather than `usermod --uid`, avoids a recursive chown of the home
        # (slow on a big volume); the files stay writable through the users group the account keeps,
        # and CHOWN_HOME is there to change their owner.
        _log_info "Update ${NB_USER}'s UID:GID to ${NB_UID}:${NB_GID}"
        _berth_quiet userdel "${NB_USER}"
        _berth_ensure_group
        # --non-unique: a host's uid may collide with a system account of the image.
        _berth_quiet useradd --no-log-init --no-create-home --non-unique --home-dir "/home/${NB_USER}" \
            --shell /bin/bash --uid "${NB_UID}" --gid "${NB_GID}" --groups users "${NB_USER}"
    fi
    _berth_relocate_home "${NB_USER}"
}

# Options such as CHOWN_HOME_OPTS="-R" hold several words; split them without globbing.
_berth_chown() {
    local opts_var="$1" target="$2" shown="${3:-$2}" opts
    read -r -a opts <<<"${!opts_var:-}"
    _log_info "Ensuring ${shown} is owned by ${NB_UID}:${NB_GID}${opts[*]:+ (chown options: ${opts[*]})}"
    chown "${opts[@]}" "${NB_UID}:${NB_GID}" "${target}"
}

# Passwordless sudo only when GRANT_SUDO asks for it; `sudo pip` then uses the venv's pip.
_berth_sudoers() {
    local file=/etc/sudoers.d/berth-grant-sudo tmp
    if ! _berth_is_true "${GRANT_SUDO:-}"; then
        rm -f "${file}"
        return 0
    fi
    _log_info "Granting ${NB_USER} passwordless sudo rights!"
    mkdir -p /etc/sudoers.d
    tmp="$(mktemp)"
    printf '%s ALL=(ALL:ALL) NOPASSWD: ALL\nDefaults:%s secure_path="%s"\n' \
        "${NB_USER}" "${NB_USER}" "${VENV_DIR:-/opt/venv}/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin" >"${tmp}"
    _berth_quiet visudo -cf "${tmp}"
    chmod 0440 "${tmp}"
    mv "${tmp}" "${file}"
}

# Root-only switches that a non-root start cannot honour: say so rather than silently ignore them.
_berth_warn_ignored() {
    local uid="$1" gid="$2" image_uid image_gid
    image_uid="$(id -u "${IMAGE_USER}" 2>/dev/null || echo 1000)"
    image_gid="$(id -g "${IMAGE_USER}" 2>/dev/null || echo 100)"
    local hint="needs the container to start as root (docker run --user root); ignored"
    ! _berth_is_true "${GRANT_SUDO:-}" ||
        _log_warn "container must be started as root to grant sudo permissions! (GRANT_SUDO=${GRANT_SUDO} ignored)"
    [ "${NB_USER}" = "${IMAGE_USER}" ] || [ "${NB_USER}" = "$(whoami 2>/dev/null)" ] ||
        _log_warn "container must be started as root to change the desired user's name with NB_USER=\"${NB_USER}\"!"
    [ "${NB_UID}" = "${image_uid}" ] || [ "${NB_UID}" = "${uid}" ] ||
        _log_warn "container must be started as root to change the desired user's id with NB_UID=\"${NB_UID}\"!"
    [ "${NB_GID}" = "${image_gid}" ] || [ "${NB_GID}" = "${gid}" ] ||
        _log_warn "container must be started as root to change the desired user's group id with NB_GID=\"${NB_GID}\"!"
    [ -z "${NB_GROUP:-}" ] || [ "${NB_GROUP}" = "$(getent group "${gid}" | cut -d: -f1)" ] ||
        _log_warn "NB_GROUP=${NB_GROUP}: naming the group ${hint}"
    ! _berth_is_true "${CHOWN_HOME:-}" || _log_warn "CHOWN_HOME=${CHOWN_HOME}: ${hint}"
    [ -z "${CHOWN_EXTRA:-}" ] || _log_warn "CHOWN_EXTRA=${CHOWN_EXTRA}: ${hint}"
}

_berth_writable_dir() { [ -d "$1" ] && [ -w "$1" ] && [ -x "$1" ]; }

# Whether the passwd entry of uid $1 is one the engine wrote, not an account: Podman (its default
# --passwd) appends "UID:*:UID:GID:container user:WORKDIR:/bin/sh" for a numeric --user that the
# image does not know, before start.sh runs. Named after its own uid and without a shadow
# password ('*', where useradd writes 'x'), such an entry stands in for the one start.sh adds on
# Docker and may be replaced by it.
_berth_engine_placeholder() {
    local fields
    IFS=: read -r -a fields <<<"$(getent passwd "$1")"
    [ "${fields[0]-}" = "$1" ] && [ "${fields[1]-}" = "*" ] && [ "${fields[2]-}" = "$1" ]
}

# Writes /etc/passwd without uid $1's engine placeholder and with entry $2 appended, in place: the
# file keeps its owner and mode (root:root 664), and /etc, where sed -i would make its temporary
# copy, is not writable for this user. Pure bash: the content never goes through a file in /tmp.
_berth_replace_placeholder() {
    local uid="$1" entry="$2" line fields kept=()
    while IFS= read -r line || [ -n "${line}" ]; do
        IFS=: read -r -a fields <<<"${line}"
        if [ "${fields[0]-}" = "${uid}" ] && [ "${fields[1]-}" = "*" ] && [ "${fields[2]-}" = "${uid}" ]; then
            continue
        fi
        kept+=("${line}")
    done </etc/passwd
    printf '%s\n' "${kept[@]}" "${entry}" >/etc/passwd
}

# An arbitrary uid (docker run --user 1234) has a read-only home and no passwd entry (or only the
# engine's nameless one, on Podman), which breaks tools that look the user up (whoami, getpass,
# ssh, some pip paths) or leaves `whoami` answering 1234. Fix both when we can.
_berth_fit_arbitrary_uid() {
    local uid="$1" gid="$2" home entry missing="missing /etc/passwd entry"
    if ! _berth_writable_dir "${HOME:-}"; then
        home="/tmp/${NB_USER}-home-${uid}"
        # A directory of that name that we do not own (or that is a symlink) is not ours to use.
        if [ -L "${home}" ] || { [ -e "${home}" ] && [ ! -O "${home}" ]; }; then
            home="$(mktemp -d "/tmp/${NB_USER}-home-${uid}.XXXXXX")"
        fi
        [ -d "${home}" ] || mkdir -m 700 "${home}"
        _log_warn "no write access to ${HOME:-}. Try starting the container with group 'users' (100), e.g. using \"--group-add=users\" (or as root with NB_UID=${uid}). Using HOME=${home} meanwhile, which is lost with the container."
        export HOME="${home}"
    fi
    if ! getent passwd "${uid}" >/dev/null; then
        _log_info "There is no entry in /etc/passwd for our UID=${uid}. Attempting to fix..."
    elif _berth_engine_placeholder "${uid}"; then
        missing="the container engine's /etc/passwd entry named ${uid}"
        _log_info "The /etc/passwd entry for our UID=${uid} is the container engine's, named ${uid}. Attempting to fix..."
    else
        return 0
    fi
    # HOME comes from the container's environment: a ':' or a line break in it would write
    # other fields or another line into passwd.
    if [[ "${HOME}" == *[:$'\n']* ]]; then
        _log_warn "unable to fix the /etc/passwd entry: HOME='${HOME}' holds ':' or a line break"
        return 0
    fi
    if [ -w /etc/passwd ]; then
        # NB_USER's name: `whoami` then answers NB_USER as docker-stacks does.
        entry="${NB_USER}:x:${uid}:${gid}:${NB_USER}:${HOME}:/bin/bash"
        if getent passwd "${uid}" >/dev/null; then
            _berth_replace_placeholder "${uid}" "${entry}"
        else
            printf '%s\n' "${entry}" >>/etc/passwd
        fi
        _log_info "Added new ${NB_USER} user (${uid}:${gid}). Fixed UID!"
        [ "${NB_USER}" = "${IMAGE_USER}" ] ||
            _log_warn "user is ${NB_USER} but home is ${HOME}. You must run as root to rename the home directory!"
    else
        _log_warn "unable to fix ${missing} because we don't have write permission. Try setting gid=0 with \"--user=${uid}:0\"."
    fi
}

# JUPYTER_ENV_VARS_TO_UNSET=A,B keeps secrets the hooks needed away from the user's command.
_berth_unset_requested() {
    local _berth_names _berth_var
    IFS=, read -r -a _berth_names <<<"${JUPYTER_ENV_VARS_TO_UNSET:-}"
    for _berth_var in "${_berth_names[@]}"; do
        _berth_var="${_berth_var//[[:space:]]/}"
        [ -n "${_berth_var}" ] || continue
        if [[ "${_berth_var}" =~ ^[A-Za-z_][A-Za-z0-9_]*$ ]]; then
            _log_info "Unset ${_berth_var} due to JUPYTER_ENV_VARS_TO_UNSET"
            unset "${_berth_var}"
        else
            _log_warn "JUPYTER_ENV_VARS_TO_UNSET: '${_berth_var}' is not a variable name; skipped"
        fi
    done
    unset JUPYTER_ENV_VARS_TO_UNSET
}

if [ "$(id -u)" = 0 ]; then
    if [ "${NB_USER}" = root ] || [ "${NB_UID}" = 0 ]; then
        # Asked for explicitly: the command keeps root, with the image's home as /home/root.
        if [ "${NB_USER}" != root ] || [ "${NB_UID}" != 0 ] || [ "${NB_GID}" != 0 ]; then
            # Only the full triplet NB_USER=root NB_UID=0 NB_GID=0 says "root" without doubt.
            _log_warn "NB_USER=${NB_USER} NB_UID=${NB_UID} NB_GID=${NB_GID}: running the command as root"
        fi
        NB_USER=root NB_UID=0 NB_GID=0
        _berth_relocate_home root
        # As docker-stacks does, so that tools reading passwd agree with HOME.
        sed -i 's|^\(root:[^:]*:0:[^:]*:[^:]*\):/root:|\1:/home/root:|' /etc/passwd
        export HOME=/home/root USER=root LOGNAME=root
        run_as=()
    else
        _berth_fit_user
        export HOME="/home/${NB_USER}" USER="${NB_USER}" LOGNAME="${NB_USER}"
        # setpriv rather than sudo/su: it changes nothing but the ids, so the whole environment
        # (PATH with the venv, NB_UMASK's umask) reaches the command, without sudo's env_reset,
        # secure_path or umask rules, and it needs no setuid binary.
        run_as=(setpriv --reuid="${NB_UID}" --regid="${NB_GID}"
            --groups="$(id -G "${NB_USER}" | tr ' ' ,)" --)
    fi
    if _berth_is_true "${CHOWN_HOME:-}"; then
        _berth_chown CHOWN_HOME_OPTS "$(readlink -f "${HOME}")" "${HOME}"
    fi
    if [ -n "${CHOWN_EXTRA:-}" ]; then
        IFS=, read -r -a chown_extra <<<"${CHOWN_EXTRA}"
        for path in "${chown_extra[@]}"; do
            [ -z "${path}" ] || _berth_chown CHOWN_EXTRA_OPTS "${path}"
        done
        unset chown_extra path
    fi
    _berth_sudoers
else
    uid="$(id -u)"
    gid="$(id -g)"
    # The passwd entry first: an NB_USER it registers is then no setting ignored.
    _berth_fit_arbitrary_uid "${uid}" "${gid}"
    _berth_warn_ignored "${uid}" "${gid}"
    unset uid gid
    run_as=()
fi

if [ -n "${NB_UMASK:-}" ]; then
    umask "${NB_UMASK}"
fi
# Runs as root when the container started as root: hooks here may still change the system.
# shellcheck source=run-hooks.sh
source "${RUN_HOOKS}" "${BEFORE_HOOKS}"

if [ "${#run_as[@]}" -gt 0 ]; then
    _log_info "Running as ${NB_USER}:" "$@"
elif [ "$(id -u)" = 0 ]; then
    _log_info "Running as root:" "$@"
else
    _log_info "Executing the command:" "$@"
fi
_berth_unset_requested
exec "${run_as[@]}" "$@"

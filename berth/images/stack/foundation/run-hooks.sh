#!/bin/bash
# run-hooks.sh DIR — run the start hooks in DIR, in sorted (byte) order of their names.
#
#   *.sh                 sourced: it runs in the calling shell and can export variables for the
#                        rest of the start (start.sh sources this file for that reason);
#   other executables    run as programs;
#   anything else        ignored, with a message (a hook missing its executable bit is a mistake
#                        worth seeing in the log).
#
# A failing hook stops everything: the message names the hook and the exit status is non-zero. As
# start.sh sources this file, that ends start.sh too, so the container's command never starts with
# a half-done setup. (jupyter/docker-stacks logs the failure and carries on; we prefer to stop.)
# A sourced hook "fails" when it returns non-zero, calls `exit`, or trips its own `set -e`.
#
# The loop is at the top level of this file, not in a function, so that `declare`/`local`-free
# assignments and `declare -x` in sourced hooks stay global, as they are in docker-stacks.

if ! declare -F _berth_log >/dev/null; then
    # Run on its own (not sourced by start.sh): same log format.
    _berth_log() {
        local level="$1"
        shift
        if [ "${level}" = I ] && [ -n "${JUPYTER_DOCKER_STACKS_QUIET:-}" ]; then
            return 0
        fi
        printf '[%s %s run-hooks.sh] %s\n' "${level}" "$(date '+%Y-%m-%d %H:%M:%S')" "$*" >&2
    }
fi

# `return` works only when sourced; plain `exit` would end the shell of whoever sourced us.
if (return 0 2>/dev/null); then _berth_hooks_sourced=1; else _berth_hooks_sourced=0; fi

if [ "$#" -ne 1 ]; then
    _berth_log E "usage: run-hooks.sh DIR"
    if [ "${_berth_hooks_sourced}" = 1 ]; then return 2; else exit 2; fi
fi
if [ ! -d "$1" ]; then
    _berth_log I "No hook directory $1; nothing to run"
    if [ "${_berth_hooks_sourced}" = 1 ]; then
        unset _berth_hooks_sourced
        return 0
    fi
    exit 0
fi

# Called by the EXIT trap below: a sourced hook ended the shell (exit, or errexit it turned on).
# shellcheck disable=SC2317  # only called from the EXIT trap
_berth_hook_exited() {
    local status="$1"
    if [ -n "${_berth_hook_current:-}" ]; then
        _berth_log E "Hook ${_berth_hook_current} failed: it ended the start with exit status ${status} while being sourced (sourced hooks must not exit)"
        [ "${status}" -ne 0 ] || exit 1
    fi
}

# Hooks run with errexit off, as in docker-stacks (hooks written for those images expect it); a
# hook can still `set -e` for itself. The caller's errexit and EXIT trap come back afterwards.
_berth_hooks_errexit="${-//[^e]/}"
_berth_hooks_trap="$(trap -p EXIT)"
trap '_berth_hook_exited $?' EXIT
set +e

_berth_hooks_dir="${1%/}"
_berth_log I "Running hooks in ${_berth_hooks_dir} as $(whoami 2>/dev/null || echo "an unnamed user") (uid $(id -u), gid $(id -g))"
mapfile -d '' -t _berth_hooks < <(
    find "${_berth_hooks_dir}" -mindepth 1 -maxdepth 1 ! -name '.*' -print0 | LC_ALL=C sort -z
)
_berth_hooks_status=0
for _berth_hook in "${_berth_hooks[@]}"; do
    if [ -d "${_berth_hook}" ]; then
        _berth_log I "Ignoring ${_berth_hook}: a directory"
        continue
    fi
    case "${_berth_hook}" in
        *.sh)
            _berth_log I "Sourcing ${_berth_hook}"
            _berth_hook_current="${_berth_hook}"
            # shellcheck disable=SC1090  # hooks are the image user's files
            source "${_berth_hook}"
            _berth_hooks_status=$?
            _berth_hook_current=
            set +e # the hook may have turned errexit on for itself
            ;;
        *)
            if [ -x "${_berth_hook}" ]; then
                _berth_log I "Running ${_berth_hook}"
                "${_berth_hook}"
                _berth_hooks_status=$?
            else
                _berth_log W "Ignoring ${_berth_hook}: neither *.sh nor executable"
                continue
            fi
            ;;
    esac
    if [ "${_berth_hooks_status}" -ne 0 ]; then
        _berth_log E "Hook ${_berth_hook} failed with exit status ${_berth_hooks_status}: stopping"
        break
    fi
done

# Restore the caller's EXIT trap and errexit, and leave no helper variables behind.
if [ -n "${_berth_hooks_trap}" ]; then eval "${_berth_hooks_trap}"; else trap - EXIT; fi
[ -z "${_berth_hooks_errexit}" ] || set -e
if [ "${_berth_hooks_status}" -eq 0 ]; then
    _berth_log I "Done running hooks in ${_berth_hooks_dir}"
fi
_berth_hooks_rc="${_berth_hooks_status}"
unset _berth_hooks _berth_hook _berth_hook_current _berth_hooks_dir _berth_hooks_trap \
    _berth_hooks_errexit _berth_hooks_status _berth_hooks_sourced
unset -f _berth_hook_exited
if [ "${_berth_hooks_rc}" -ne 0 ]; then
    # Stopping the start is the point: exit even when sourced.
    exit "${_berth_hooks_rc}"
fi
unset _berth_hooks_rc

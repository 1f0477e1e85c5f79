#!/bin/bash
# run-hooks.sh DIR — run the start hooks in DIR, in sorted (byte) order of their names.
#
#   *.sh                 sourced: it runs in the calling shell and can export variables for the
#                        rest of the start (start.sh sources this file for that reason);
#   other executables    run as programs;
#   anything else        skipped, with a message.
#
# A hook that fails (non-zero status) is logged as an error naming it, and the next hooks still
# run: the behaviour of docker-stacks, whose hooks are written for it. A sourced hook that ends
# the shell itself (`exit`, or its own `set -e` tripping) ends the start; the log names it.
# No DIR, two DIRs, or a DIR that is not a directory: an error, and a non-zero status.
#
# The loop is at the top level of this file, not in a function, so that plain assignments and
# `declare -x` in sourced hooks stay global.

# shellcheck source-path=SCRIPTDIR
# The log functions live beside this file (/usr/local/bin in the image); start.sh has them already.
if ! declare -F _log >/dev/null; then
    # shellcheck source=_docker_stacks_log.sh
    source "$(dirname "${BASH_SOURCE[0]}")/_docker_stacks_log.sh"
fi

# `return` works only when sourced; plain `exit` would end the shell of whoever sourced us.
if (return 0 2>/dev/null); then _berth_hooks_sourced=1; else _berth_hooks_sourced=0; fi

_berth_hooks_error=
if [ "$#" -ne 1 ]; then
    _berth_hooks_error="Should pass exactly one directory"
elif [ ! -d "$1" ]; then
    _berth_hooks_error="Directory $1 doesn't exist or is not a directory"
fi
if [ -n "${_berth_hooks_error}" ]; then
    _log_error "${_berth_hooks_error}"
    unset _berth_hooks_error
    if [ "${_berth_hooks_sourced}" = 1 ]; then
        unset _berth_hooks_sourced
        return 1
    fi
    exit 1
fi
unset _berth_hooks_error

# Called by the EXIT trap below: a sourced hook ended the shell (exit, or errexit it turned on).
# shellcheck disable=SC2317  # only called from the EXIT trap
_berth_hook_exited() {
    local status="$1"
    if [ -n "${_berth_hook_current:-}" ]; then
        _log_error "${_berth_hook_current} ended the shell with exit status ${status} while being sourced; nothing after it runs"
        [ "${status}" -ne 0 ] || exit 1
    fi
}

# Hooks run with errexit off (hooks written for docker-stacks expect it); a hook can still
# `set -e` for itself. The caller's errexit and EXIT trap come back afterwards.
_berth_hooks_errexit="${-//[^e]/}"
_berth_hooks_trap="$(trap -p EXIT)"
trap '_berth_hook_exited $?' EXIT
set +e

# Paths are "$1/<name>" with DIR exactly as given, so the log names what the caller passed.
_berth_hooks_dir="$1"
_log_info "Running hooks in: ${_berth_hooks_dir} as uid: $(id -u) gid: $(id -g)"
mapfile -d '' -t _berth_hooks < <(
    find "${_berth_hooks_dir}/" -mindepth 1 -maxdepth 1 ! -name '.*' -printf '%f\0' | LC_ALL=C sort -z
)
for _berth_hook in "${_berth_hooks[@]}"; do
    _berth_hook="${_berth_hooks_dir}/${_berth_hook}"
    if [ -d "${_berth_hook}" ]; then
        _log_info "Ignoring directory: ${_berth_hook}"
        continue
    fi
    case "${_berth_hook}" in
        *.sh)
            _log_info "Sourcing shell script: ${_berth_hook}"
            _berth_hook_current="${_berth_hook}"
            # shellcheck disable=SC1090  # hooks are the image user's files
            source "${_berth_hook}"
            _berth_hook_status=$?
            _berth_hook_current=
            set +e # the hook may have turned errexit on for itself
            ;;
        *)
            if [ ! -x "${_berth_hook}" ]; then
                _log_info "Ignoring non-executable: ${_berth_hook}"
                continue
            fi
            _log_info "Running executable: ${_berth_hook}"
            "${_berth_hook}"
            _berth_hook_status=$?
            ;;
    esac
    if [ "${_berth_hook_status}" -ne 0 ]; then
        _log_error "${_berth_hook} has failed, continuing execution"
    fi
done
_log_info "Done running hooks in: ${_berth_hooks_dir}"

# Restore the caller's EXIT trap and errexit, and leave no helper variables behind.
if [ -n "${_berth_hooks_trap}" ]; then eval "${_berth_hooks_trap}"; else trap - EXIT; fi
[ -z "${_berth_hooks_errexit}" ] || set -e
unset _berth_hooks _berth_hook _berth_hook_current _berth_hook_status _berth_hooks_dir \
    _berth_hooks_trap _berth_hooks_errexit _berth_hooks_sourced
unset -f _berth_hook_exited

#!/bin/bash
# Logging for start.sh, run-hooks.sh and hooks: source this file, then call
#
#   _log [LEVEL] MESSAGE...     LEVEL is DEBUG, INFO (the default), WARNING, ERROR or FATAL
#   _log_info / _log_warn / _log_error MESSAGE...
#   _log_fatal MESSAGE...       logs, then exits the shell with status 1
#
# Each line is "LEVEL[YYYY-MM-DD HH:MM:SS] message" on stderr, so it never mixes with a command's
# output. The file name, the function names and the line format are docker-stacks' (hooks written
# for those images call these functions, and people and log tools match on "WARNING[" or "ERROR[").
# JUPYTER_DOCKER_STACKS_QUIET hides INFO and DEBUG lines; warnings and errors always show.
# On a terminal the level is coloured, unless NO_COLOR is set (https://no-color.org).

_log() {
    local level=INFO color=
    case "${1-}" in
        DEBUG | INFO | WARNING | ERROR | FATAL)
            level="$1"
            shift
            ;;
    esac
    if [ -n "${JUPYTER_DOCKER_STACKS_QUIET:-}" ] && { [ "${level}" = INFO ] || [ "${level}" = DEBUG ]; }; then
        return 0
    fi
    if [ -t 2 ] && [ -z "${NO_COLOR:-}" ]; then
        case "${level}" in
            FATAL) color='0;1;31' ;;
            ERROR) color='0;31' ;;
            WARNING) color='0;33' ;;
            DEBUG) color='0;36' ;;
        esac
    fi
    # printf's %(...)T formats the time without forking date(1) for every line.
    if [ -n "${color}" ]; then
        printf '\033[%sm%s[%(%Y-%m-%d %H:%M:%S)T] %s\033[0m\n' "${color}" "${level}" -1 "$*" >&2
    else
        printf '%s[%(%Y-%m-%d %H:%M:%S)T] %s\n' "${level}" -1 "$*" >&2
    fi
}
_log_info() { _log INFO "$@"; }
_log_warn() { _log WARNING "$@"; }
_log_error() { _log ERROR "$@"; }
_log_fatal() {
    _log FATAL "$@"
    exit 1
}

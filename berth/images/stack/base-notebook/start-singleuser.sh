#!/bin/bash
# Compatibility name: JupyterHub configs written for older docker-stacks images run
# start-singleuser.sh (e.g. DockerSpawner's cmd). The logic lives in start-singleuser.py.
set -e
exec /usr/local/bin/start-singleuser.py "$@"

#!/bin/bash
# Compatibility name: images, spawners and docs written for older docker-stacks images run
# start-notebook.sh. The logic lives in start-notebook.py.
set -e
exec /usr/local/bin/start-notebook.py "$@"

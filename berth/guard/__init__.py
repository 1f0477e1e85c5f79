"""The engine guard: an authorizing proxy between the hub and the Docker Engine API.

The hub talks to the guard's unix socket instead of the engine's (which is root on the host).
The guard allows only the calls Berth's spawner makes, only on Berth's own labelled objects, and
refuses every container that would reach outside its sandbox (see :mod:`.policy` and
:mod:`.bodies`; docs/security.md explains the rules). Run it with ``python -m berth.guard``.
"""

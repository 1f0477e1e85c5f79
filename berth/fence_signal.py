"""How a user server on a Swarm knows that berth-fence has fenced its network.

A ground floor module shared by the fence (berth/deploy/fence.py, which writes the rules) and
the Swarm spawner (which starts each server behind :data:`WAIT_SCRIPT`).

The first rule the fence writes in a server's OUTPUT chain drops UDP to 127.0.0.1 port 1 (the
canary). Sending a datagram there succeeds in a network namespace without the fence's rules and
fails at once with EPERM in one that has them: the server's own process can tell, without any
capability and without a packet leaving the container. Nothing in the container can forge the
answer before the server's command runs, and the server's command (and any code of the user's)
runs only after it.
"""

from __future__ import annotations

CANARY_ADDRESS = "127.0.0.1"
CANARY_PORT = 1
CANARY_RULE = f"-d {CANARY_ADDRESS}/32 -o lo -p udp -m udp --dport {CANARY_PORT} -j DROP"
EXIT_NOT_FENCED = 75  # the server's exit status when the fence did not come in time

# argv: [seconds, command...]. Waits (bounded) for the canary, then becomes the command.
WAIT_SCRIPT = f"""\
import os, socket, sys, time
deadline = time.monotonic() + float(sys.argv[1])
while True:
    probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        probe.sendto(b"", ({CANARY_ADDRESS!r}, {CANARY_PORT}))
    except PermissionError:
        break
    finally:
        probe.close()
    if time.monotonic() > deadline:
        print("berth: berth-fence did not fence this server's network in " + sys.argv[1]
              + " s: not started", file=sys.stderr, flush=True)
        sys.exit({EXIT_NOT_FENCED})
    time.sleep(0.1)
os.execvp(sys.argv[2], sys.argv[2:])
"""


def wait_then(command: list[str], seconds: float) -> list[str]:
    """``command`` behind the wait: it starts only once the server's network is fenced."""
    if not command:
        raise ValueError("the wait for the fence needs the server's command")
    return ["python3", "-c", WAIT_SCRIPT, f"{seconds:g}", *command]

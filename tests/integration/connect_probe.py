"""The TCP connect probe the Swarm tests run inside a server or the hub's container, as code an
attacker there would run: `probe(host, port)` says "open", "timeout" or the error's name."""

from __future__ import annotations

PROBE_FUNCTION = """
import json, socket, sys
def probe(host, port):
    s = socket.socket()
    s.settimeout(2)
    try:
        s.connect((host, port))
        return "open"
    except socket.timeout:
        return "timeout"
    except OSError as e:
        return type(e).__name__
    finally:
        s.close()
"""

# python3 -c PROBE_ARGV '{"name": ["host", port], …}' prints {"name": outcome, …}.
PROBE_ARGV = (
    PROBE_FUNCTION
    + "print(json.dumps({name: probe(h, p) for name, (h, p) in json.loads(sys.argv[1]).items()}))\n"
)

"""Single-user mode: `berth run`, one secure notebook container for one person."""

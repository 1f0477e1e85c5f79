"""`berth up` and friends: the hub container, its data volume, secrets, TLS and accounts."""

"""berth.yaml: schema, loading, and translation into JupyterHub configuration."""

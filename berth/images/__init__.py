"""The notebook image stack: definitions, the OS base, and the builder."""

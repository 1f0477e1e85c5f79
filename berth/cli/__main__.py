"""`python -m berth` is the `berth` command."""

from berth.cli import main

main()

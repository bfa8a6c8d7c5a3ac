"""`python -m streamhouse.cli`: the same command as the `streamhouse` script."""

from streamhouse.cli.main import main

main()

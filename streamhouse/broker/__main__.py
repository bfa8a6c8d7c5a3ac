"""`python -m streamhouse.broker` runs the daemon, like `streamhouse-broker`."""

from streamhouse.broker.cli import main

main()

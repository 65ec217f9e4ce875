"""`python -m stream` is `claims-stage`."""

from stream.cli import main

main()

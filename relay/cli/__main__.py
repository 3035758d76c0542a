"""`python -m relay.cli`: how `serve` starts its worker processes."""

from relay.cli import main

main()

"""`python -m relay.ops.cli`: how `serve` starts its worker processes."""

from relay.ops.cli import main

main()

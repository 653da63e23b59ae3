"""`python -m dgxie` is the `dgxie` CLI."""

from dgxie.cli import main

main()

"""`python -m ferkit ...` is the `ferkit` command."""
import sys

from ferkit.cli.commands import main

if __name__ == "__main__":
    sys.exit(main())

"""``python -m convonet``: the same entry point as the ``convonet`` command."""

import sys

from convonet.cli import main

if __name__ == "__main__":
    sys.exit(main())

"""``python -m blendspace_tools``: the same command line as ``python -m blendspace``."""

import sys

from blendspace_tools.cli import main

if __name__ == "__main__":
    sys.exit(main())

"""Only the documented entry point ``python -m blendspace``; the command line itself is ``blendspace_tools.cli``.

``blendspace/`` holds the pure math and imports no tooling: this forwarder is its one exception.
"""

import sys

from blendspace_tools.cli import main

if __name__ == "__main__":
    sys.exit(main())

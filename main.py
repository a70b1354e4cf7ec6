"""paddlex_feat command line: python main.py -c CONFIG.yaml -o Section.key=value ..."""

import sys

from paddlex_feat.cli import main

if __name__ == "__main__":
    sys.exit(main())

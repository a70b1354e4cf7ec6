"""``python -m paddlex_feat -c CONFIG.yaml ...``"""

import sys

from .cli import main

sys.exit(main())

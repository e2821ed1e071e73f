"""``python -m jepa_lite.pretrain`` = ``jepa-lite pretrain``: the module torchrun starts.

    torchrun --nproc_per_node 4 -m jepa_lite.pretrain --data-root DIR --out RUN [options]

The options, the configuration they make and the loop are in ``jepa_lite.cli`` and
``jepa_lite.train``.
"""

import sys

from jepa_lite.cli import main

if __name__ == "__main__":
    sys.exit(main(["pretrain", *sys.argv[1:]]))

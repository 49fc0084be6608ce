"""``python tests/unit/runtime/native_replay.py [seed]`` prints ``{"compiled": bool, "digest": str}``: the
fold accelerator enabled (``native.enable("auto")``, unless ``HOMESEC_PURE_PYTHON=1``), then the long replay
of ``homesec_domain.fold_sample`` through whichever modules loaded. ``test_native.py`` runs it under the
compiled modules and the plain ones and compares the digests.
"""

from __future__ import annotations

import json
import logging
import sys

from homesec_domain import fold_sample
from homesec_runtime import native


def replay(seed: int) -> str:
    from homesec_domain import fold, rollup

    return fold_sample.replay(seed, fold, rollup)


if __name__ == "__main__":
    native.enable("auto", logging.getLogger("native_replay"))
    seed = int(sys.argv[1]) if len(sys.argv) > 1 else 1
    print(json.dumps({"compiled": native.ACTIVE, "digest": replay(seed)}))

"""Coverage-guided fuzzing of one harness with atheris (libFuzzer for Python):

    nice -n 10 python tests/fuzz/run_atheris.py image -max_total_time=120 /tmp/fuzz-image

The first folder argument is libFuzzer's working corpus (new inputs go there; keep it out of the
repository); the harness's seed corpus in tests/fuzz/corpus/<name>/ is always added read-only. The SDK
and Pillow's image plugins are instrumented for coverage. A crash writes ./crash-<sha1> (the input).
"""

from __future__ import annotations

import sys
import warnings
from pathlib import Path

import atheris

sys.path.insert(0, str(Path(__file__).resolve().parent))

# Coverage comes from the modules imported inside this block only, so import (before the first input)
# everything the harnesses reach: the SDK's parsers and all of Pillow's format plugins.
with atheris.instrument_imports(include=["tsjnet_sdk", "PIL", "harnesses"]):
    from PIL import Image

    Image.init()  # imports every format plugin now (Pillow loads them lazily otherwise)
    import harnesses

    import tsjnet_sdk.cli
    import tsjnet_sdk.engine_format
    import tsjnet_sdk.imaging
    import tsjnet_sdk.models.checkpoint
    import tsjnet_sdk.models.config
    import tsjnet_sdk.runtime.artifacts  # noqa: F401


def main() -> None:
    name, args = sys.argv[1], sys.argv[2:]
    warnings.simplefilter("ignore")  # Pillow's and ORT's warnings about corrupt input are expected
    harness = harnesses.HARNESSES[name]
    folders = [a for a in args if not a.startswith("-")]
    flags = [a for a in args if a.startswith("-")]
    argv = [sys.argv[0], *flags, *folders, str(harnesses.CORPUS / name)]
    atheris.Setup(argv, harness)
    atheris.Fuzz()


if __name__ == "__main__":
    main()

"""Run DRRProjection's three kinds of kernel calls at once, as the module can (issue 14, item 4).

The kernel warm-up thread, the main thread preparing a CT (``logic.prepare`` after the CT node
changed) and a worker marching previews (``logic.render``) all run numba ``parallel=True``
kernels. Under numba's workqueue threading layer two such calls at once abort the process.
``--unlocked`` removes MedSynth's kernel lock, to show that this script does reach the abort.
Prints "threading layer <name>" and "ok <renders> <prepares>" when it survives.
"""

from __future__ import annotations

import contextlib
import sys
import threading
import time

import numpy as np


def main(argv: list[str]) -> int:
    from medsynth.drr import prepare, projector
    from medsynth.drr.parameters import CArmPose, DRRParameters
    from medsynth.module_logic.drr import DRRLogic
    from medsynth.mrml import volume_to_node
    from medsynth.phantoms import cylinder_phantom

    if "--unlocked" in argv:
        prepare.PARALLEL_KERNELS = projector.PARALLEL_KERNELS = contextlib.nullcontext()
    seconds = float(argv[argv.index("--seconds") + 1]) if "--seconds" in argv else 4.0
    ct = cylinder_phantom(shape=(48, 96, 96), spacing_mm=1.5)
    node = volume_to_node(ct, name="phantom CT")
    logic = DRRLogic()
    r, a, s = (float(v) for v in ct.center_ras)
    parameters = DRRParameters(pose=CArmPose(isocenter_r=r, isocenter_a=a, isocenter_s=s), detector_rows=48,
                               detector_columns=48, pixel_spacing=6.0, device="cpu")
    job = logic.prepare(node, parameters, preview=True)
    logic.render(job)  # compiled (or loaded from the cache) before the race starts
    import numba

    print("threading layer", numba.threading_layer(), flush=True)

    stop = time.monotonic() + seconds
    renders = prepares = 0
    errors: list[BaseException] = []

    def march() -> None:
        nonlocal renders
        try:
            while time.monotonic() < stop:
                logic.render(job)
                renders += 1
        except BaseException as error:  # noqa: BLE001 - reported below
            errors.append(error)

    worker = threading.Thread(target=march, name="preview")
    warm_up = DRRLogic.warm_up_in_background()
    worker.start()
    while time.monotonic() < stop:
        node.GetImageData().Modified()  # the CT changed: prepare packs it again, on the main thread
        logic.prepare(node, parameters, preview=True)
        prepares += 1
    worker.join()
    warm_up.join()
    if errors:
        raise errors[0]
    print("ok", renders, prepares, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

"""The cyclic garbage collector during a Lambda cold start.

A cold start imports some 600 modules and builds FastAPI's routes and pydantic's validators: a few
hundred thousand objects, nearly all of which live as long as the execution environment. Meanwhile
CPython's collector runs a pass every 700 allocations, and a full pass (which traverses every tracked
object) whenever the long-lived ones grow by a quarter. On the 2-core development machine those passes
cost a first request 25–70 ms (bench/layer_cold_start.py), and find a few hundred objects to free
(~0.5 MB): they are nearly all the cost of collecting, none of the benefit.

So a handler pauses the collector at the top of its module (`pause`) and resumes it after its first
invocation (`resume`): what exists then is frozen (`gc.freeze`: moved out of the generations, so no
later pass traverses the start-up objects again, which also makes the later passes cheaper) and the
collector is turned back on for the life of the environment. The garbage of the start-up stays frozen
with them: the few hundred objects above, once per execution environment.

Only in a Lambda execution environment, which the runtime marks with `AWS_LAMBDA_RUNTIME_API`: a test
or an `agent-memory invoke` that imports a handler in a long-lived process, and may never invoke it,
keeps its collector.

Where INIT runs ahead of any request (SnapStart, provisioned concurrency), `resume(collect=True)` at the
end of INIT collects first, since nothing waits for it there.
"""

from __future__ import annotations

import gc
import os

_paused = False


def pause() -> None:
    """Turn the collector off until `resume`, in a Lambda execution environment; a no-op elsewhere, or if
    something else already turned it off."""
    global _paused
    if os.environ.get("AWS_LAMBDA_RUNTIME_API") and gc.isenabled():
        gc.disable()
        _paused = True


def resume(*, collect: bool = False) -> None:
    """Freeze what the start-up built and turn the collector back on, if `pause` turned it off."""
    global _paused
    if not _paused:
        return
    _paused = False
    if collect:
        gc.collect()
    gc.freeze()
    gc.enable()

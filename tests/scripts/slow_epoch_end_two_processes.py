"""Two gloo training processes where rank 0's epoch-end work (evaluation, saving) takes 45 s.

    python tests/scripts/slow_epoch_end_two_processes.py            # with train.wait_for_main_process
    python tests/scripts/slow_epoch_end_two_processes.py --without  # the old behaviour: rank 1 dies

Rank 1 used to run straight into the next epoch's all-reduce and wait there; gloo gives up after
30 s (gloo::TimeoutException, SIGABRT), which killed `Train.cpu_processes=2` runs whose
evaluation was slow on a loaded machine. Exits 0 when the run survives (or, with --without, when
it dies as described). Too slow for the unit tests (45 s by design).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from types import SimpleNamespace

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

SLOW_SECONDS = 45


def worker(use_wait: bool) -> None:
    """One process: a step, a slow epoch end on rank 0, another step (an all-reduce)."""
    import paddle
    import paddle.distributed as dist

    from paddlex_feat.engine.train import wait_for_main_process

    dist.init_parallel_env()
    rank = dist.get_rank()
    model = paddle.DataParallel(paddle.nn.Linear(4, 4))
    opt = paddle.optimizer.SGD(parameters=model.parameters())
    run = SimpleNamespace(world=dist.get_world_size(), is_main=rank == 0)
    for epoch in (1, 2):
        model(paddle.randn([2, 4])).sum().backward()
        opt.step()
        opt.clear_grad()
        if rank == 0:
            time.sleep(SLOW_SECONDS)  # evaluation and checkpointing on a loaded CPU
        if use_wait:
            wait_for_main_process(run, epoch)
    print(f"rank {rank}: both epochs done", flush=True)


def main() -> int:
    import paddle.distributed as dist

    use_wait = "--without" not in sys.argv
    try:
        dist.spawn(worker, args=(use_wait,), nprocs=2, backend="gloo")
        survived = True
    except Exception as err:  # noqa: BLE001 - spawn re-raises a worker's death as a bare Exception
        print(f"the run died: {err}")
        survived = False
    ok = survived == use_wait
    print("PASS" if ok else "FAIL", "(with wait_for_main_process)" if use_wait else "(without it)")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

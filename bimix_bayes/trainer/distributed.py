"""Process layout under ``torchrun``: which rank this process is and which device it drives.

``torchrun --nproc_per_node=K`` starts K processes with ``RANK``, ``LOCAL_RANK`` and ``WORLD_SIZE``
in the environment; a plain ``python``/``bimix`` process is rank 0 of a world of 1 and never touches
``torch.distributed``. The NCCL backend drives GPUs and gloo drives CPUs (which is how the tests run
two ranks on a laptop).

Examples
--------
>>> layout = Layout.from_env({})
>>> layout.rank, layout.world_size, layout.is_main
(0, 1, True)
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

import torch
import torch.distributed as dist

from bimix_bayes.errors import BimixInputError


@dataclass(frozen=True)
class Layout:
    """Rank, local rank and world size of this process."""

    rank: int = 0
    local_rank: int = 0
    world_size: int = 1

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Layout:
        """Read the ``torchrun`` variables (absent: a single process)."""
        env = os.environ if env is None else env
        return cls(int(env.get("RANK", 0)), int(env.get("LOCAL_RANK", 0)),
                   int(env.get("WORLD_SIZE", 1)))

    @property
    def is_main(self) -> bool:
        """Rank 0 writes the observations and checkpoints and shows progress."""
        return self.rank == 0

    def device(self, requested: str | None) -> torch.device:
        """The device this rank trains on: ``cuda:LOCAL_RANK`` or ``cpu``.

        ``requested`` is ``"cpu"``, ``"cuda"`` or None/``"auto"`` (CUDA when available).
        """
        kind = requested or "auto"
        if kind == "auto":
            kind = "cuda" if torch.cuda.is_available() else "cpu"
        if kind not in ("cpu", "cuda"):
            raise BimixInputError(f"device must be cpu, cuda or auto, got {requested!r}")
        if kind == "cpu":
            return torch.device("cpu")
        if not torch.cuda.is_available():
            raise BimixInputError("--device cuda requested but CUDA is not available here")
        if self.local_rank >= torch.cuda.device_count():
            raise BimixInputError(f"local rank {self.local_rank} has no GPU "
                                  f"({torch.cuda.device_count()} visible)")
        return torch.device("cuda", self.local_rank)

    def start(self, device: torch.device) -> None:
        """Join the process group (a no-op for a single process)."""
        if self.world_size > 1 and not dist.is_initialized():
            if device.type == "cuda":
                torch.cuda.set_device(device)
            dist.init_process_group("nccl" if device.type == "cuda" else "gloo")

    def barrier(self) -> None:
        """Wait for every rank (a no-op for a single process)."""
        if dist.is_initialized():
            dist.barrier()

    def stop(self) -> None:
        """Leave the process group."""
        if dist.is_initialized():
            dist.destroy_process_group()

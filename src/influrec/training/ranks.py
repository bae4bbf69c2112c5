"""Which training process this is, of how many: what the trainer asks before it writes a file
or takes a decision that every process must take the same way.

A single process (:data:`SINGLE`) is rank 0 of 1: it writes everything, and agreeing or
waiting is free (no ``torch.distributed`` call is made). Under torchrun the trainer holds a
:class:`Ranks` of the initialised process group (:mod:`influrec.training.distributed`): rank 0
writes the run folder, and the values every rank must share (the time spent, whether the time
budget is up, why training stops) are rank 0's, broadcast.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

T = TypeVar("T")


@dataclass(frozen=True)
class Ranks:
    """Process ``rank`` of ``world`` (0 of 1: a single process)."""

    rank: int = 0
    world: int = 1

    @classmethod
    def from_environment(cls, env: Mapping[str, str] | None = None) -> Ranks:
        """torchrun's ``RANK`` of ``WORLD_SIZE`` (0 of 1 outside torchrun)."""
        env = os.environ if env is None else env
        return cls(int(env.get("RANK", "0")), int(env.get("WORLD_SIZE", "1")))

    @property
    def launched(self) -> bool:
        """Whether this process is one of several (torchrun with more than one process)."""
        return self.world > 1

    @property
    def writes(self) -> bool:
        """Whether this process writes the run folder (rank 0 only)."""
        return self.rank == 0

    def agree(self, value: T) -> T:
        """Rank 0's ``value`` (any picklable object), on every rank."""
        if self.world == 1:
            return value
        import torch.distributed as dist

        box: list[Any] = [value]
        dist.broadcast_object_list(box, src=0)
        return box[0]

    def gather(self, value: T) -> list[T]:
        """Every rank's ``value``, in rank order, on every rank."""
        if self.world == 1:
            return [value]
        import torch.distributed as dist

        values: list[Any] = [None] * self.world
        dist.all_gather_object(values, value)
        return values

    def barrier(self) -> None:
        """Wait until every rank gets here."""
        if self.world > 1:
            import torch.distributed as dist

            dist.barrier()


SINGLE = Ranks()

"""A DataLoader that resumes mid-epoch: after a resume it skips the batches already trained on."""

from __future__ import annotations

from collections.abc import Callable

from torch.utils.data import DataLoader


class ResumingDataLoader(DataLoader):
    """A DataLoader whose iterator, when first asked for a batch, discards ``skip_fn()`` batches
    (the part of an epoch a resumed run has already trained on). The count is read lazily because
    Lightning creates the iterator before it restores the loop's progress."""

    def __init__(self, *args, skip_fn: Callable[[], int], **kwargs):
        super().__init__(*args, **kwargs)
        self.skip_fn = skip_fn

    def __iter__(self):
        return SkipFirst(super().__iter__(), self.skip_fn)

    def state_dict(self) -> dict:
        """Nothing to save: the position is the loop's restored progress, the order a function of the
        epoch. (Having the method tells Lightning that this loader resumes mid-epoch correctly.)"""
        return {}

    def load_state_dict(self, state_dict: dict) -> None:
        """See :meth:`state_dict`."""


class SkipFirst:
    """An iterator that drops ``skip_fn()`` items before its first one."""

    def __init__(self, iterator, skip_fn: Callable[[], int]):
        self.iterator, self.skip_fn = iterator, skip_fn

    def __iter__(self):
        return self

    def __next__(self):
        if self.skip_fn is not None:
            skip, self.skip_fn = self.skip_fn(), None
            for _ in range(skip):
                next(self.iterator)
        return next(self.iterator)

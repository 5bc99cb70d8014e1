"""`TransformWrappingDataset`: the base of the training-set wrappers that take over timm's train transform.

timm's `create_loader` assigns the train transform to `dataset.transform`. A wrapper (STL's paired views, the crop
record of the stored label maps) takes that transform, wraps it (`wrap`) and leaves the wrapped dataset handing over
untransformed images; every other attribute (`reader`, `__len__`, ...) is the wrapped dataset's.
"""
from typing import Any, Callable, Optional

from torch.utils.data import Dataset

__all__ = ['TransformWrappingDataset']


class TransformWrappingDataset(Dataset):
    """ Holds `dataset`; `transform` is `wrap(transform)` of the transform assigned to it (see the module docstring).
    Subclasses implement `wrap` and `__getitem__`, reading the wrapped transform through `wrapped_transform()`. """

    def __init__(self, dataset: Dataset):
        self.dataset = dataset
        self._wrapped: Optional[Any] = None
        self.transform = getattr(dataset, 'transform', None)

    def wrap(self, transform: Callable) -> Any:
        raise NotImplementedError

    @property
    def transform(self) -> Optional[Any]:
        return self._wrapped

    @transform.setter
    def transform(self, transform: Optional[Callable]) -> None:
        self._wrapped = None if transform is None else self.wrap(transform)
        self.dataset.transform = None  # the wrapped dataset hands over untransformed images

    def wrapped_transform(self) -> Any:
        """ The wrapped train transform; an error naming the fix when none was assigned. """
        if self._wrapped is None:
            raise RuntimeError(f'{type(self).__name__} has no train transform; assign one (create_loader does).')
        return self._wrapped

    def __len__(self) -> int:
        return len(self.dataset)

    def __getattr__(self, name: str):
        if name in ('dataset', '_wrapped') or name.startswith('__'):  # not yet set (unpickling): avoid recursing
            raise AttributeError(name)
        return getattr(self.dataset, name)

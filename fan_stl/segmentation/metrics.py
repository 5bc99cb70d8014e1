"""Semantic-segmentation scores from one confusion matrix: per-class IoU, mIoU and pixel accuracy, void ignored.

IoU_c = TP / (TP + FP + FN) over all pixels of the set (not averaged per image). A class that appears neither in the
labels nor in the predictions has no IoU (NaN) and is left out of the mean, as in mmseg and the Cityscapes scripts.
"""
from typing import Dict, List

import torch


class ConfusionMatrix:
    """ Accumulates `matrix[label, prediction]` pixel counts; pixels labelled `ignore_index` are not counted. """

    def __init__(self, num_classes: int, ignore_index: int):
        self.num_classes = num_classes
        self.ignore_index = ignore_index
        self.matrix = torch.zeros(num_classes, num_classes, dtype=torch.int64)

    def update(self, prediction: torch.Tensor, target: torch.Tensor) -> None:
        """ Add a batch: `prediction` and `target` class indices of the same shape (e.g. (B, H, W)). """
        if prediction.shape != target.shape:
            raise ValueError(f'prediction {tuple(prediction.shape)} and target {tuple(target.shape)} differ in shape')
        keep = target != self.ignore_index
        prediction, target = prediction[keep].long().cpu(), target[keep].long().cpu()
        if target.numel() and (int(target.min()) < 0 or int(target.max()) >= self.num_classes):
            raise ValueError(f'target values outside 0-{self.num_classes - 1} (and ignore {self.ignore_index})')
        if prediction.numel() and (int(prediction.min()) < 0 or int(prediction.max()) >= self.num_classes):
            raise ValueError(f'predicted classes outside 0-{self.num_classes - 1}')
        counts = torch.bincount(target * self.num_classes + prediction, minlength=self.num_classes ** 2)
        self.matrix += counts.view(self.num_classes, self.num_classes)

    def iou(self) -> torch.Tensor:
        """ Per-class IoU (float64), NaN for classes absent from both labels and predictions. """
        m = self.matrix.double()
        tp = m.diag()
        union = m.sum(0) + m.sum(1) - tp
        return torch.where(union > 0, tp / union.clamp(min=1), torch.full_like(tp, float('nan')))

    def miou(self) -> float:
        """ Mean IoU in percent over the classes that have one. """
        return 100. * float(self.iou().nanmean())

    def pixel_accuracy(self) -> float:
        total = int(self.matrix.sum())
        return 100. * int(self.matrix.diag().sum()) / total if total else float('nan')

    def summary(self, class_names: List[str]) -> Dict[str, object]:
        """ mIoU, pixel accuracy and per-class IoU (percent; None where undefined), JSON-ready. """
        iou = self.iou()
        return {
            'miou': self.miou(), 'pixel_accuracy': self.pixel_accuracy(), 'pixels': int(self.matrix.sum()),
            'iou': {name: None if torch.isnan(v) else 100. * float(v) for name, v in zip(class_names, iou)}}

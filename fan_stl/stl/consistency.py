"""The Jensen-Shannon consistency term across the k views of each image (AugMix; timm's `--jsd-loss`).

For `k` views with predicted distributions `p_1 ... p_k` (softmax of the logits) and their mixture
`M = clamp(mean_v p_v, 1e-7, 1)`, the term is `weight * (1/k) sum_v KL(p_v || M)`, averaged over the images (and, for
token predictions, over images and tokens): AugMix's formula (weight 12), computed exactly as timm's `JsdCrossEntropy`
computes its consistency part, so that stage plain's loss `CE(clean view) + JSD` equals `JsdCrossEntropy` on the same
logits (tests/stl/test_consistency.py). `ViewConsistency` adds the term to a stage's own loss on the first (clean)
split: on the class logits, and with `tokens=True` also on the per-token logits of a token-head model.
"""
from typing import Callable, Sequence, Tuple, Union

import torch
import torch.nn.functional as F

from .multiview import check_num_splits

__all__ = ['JSD_WEIGHT', 'js_divergence', 'ViewConsistency']

JSD_WEIGHT = 12.  # AugMix (and timm's JsdCrossEntropy alpha)


def js_divergence(logits: torch.Tensor, num_splits: int) -> torch.Tensor:
    """ `(1/k) sum_v KL(p_v || M)` of a split-major `(k B, ..., K)` logit tensor, averaged over the `B * ...`
    predictions of one split, in fp32. """
    check_num_splits(logits.shape[0], num_splits)
    probs = F.softmax(logits.float(), dim=-1).reshape(num_splits, -1, logits.shape[-1])
    log_mixture = probs.mean(0).clamp(1e-7, 1).log()
    rows = probs.shape[1]
    kl = sum(F.kl_div(log_mixture, p, reduction='sum') / rows for p in probs)
    return kl / num_splits


class ViewConsistency:
    """ `loss(output, ...)` of a stage on the first split, plus the JS term across the splits (see the docstring). """

    def __init__(self, num_splits: int, weight: float = JSD_WEIGHT, tokens: bool = False):
        if num_splits < 2:
            raise ValueError(f'the JSD consistency loss needs --aug-splits >= 2; got {num_splits}.')
        if weight < 0:
            raise ValueError(f'the JSD weight must be >= 0; got {weight}.')
        self.num_splits, self.weight, self.tokens = num_splits, weight, tokens

    def first_split(self, output: Union[torch.Tensor, Sequence[torch.Tensor]]) -> Union[torch.Tensor, Tuple]:
        """ The model output of the first (clean) split. """
        if isinstance(output, (tuple, list)):
            return tuple(self.first_split(o) for o in output)
        return output[:check_num_splits(output.shape[0], self.num_splits)]

    def __call__(self, output: Union[torch.Tensor, Sequence[torch.Tensor]],
                 clean_loss: Callable[[Union[torch.Tensor, Tuple]], torch.Tensor]) -> torch.Tensor:
        """ `clean_loss(first split output) + weight * JS(class logits) [+ weight * JS(token logits)]`. """
        cls_logits = output[0] if isinstance(output, (tuple, list)) else output
        with torch.autocast(device_type=cls_logits.device.type, enabled=False):
            loss = clean_loss(self.first_split(output)) + self.weight * js_divergence(cls_logits, self.num_splits)
            if self.tokens and isinstance(output, (tuple, list)):
                loss = loss + self.weight * js_divergence(output[1], self.num_splits)
        return loss

"""Image filters shared by the torch corruptions: padding by index, Gaussian and box blurs, FFT filtering.

Images are (N, C, H, W) float tensors. Padding is done by gathering indices, so a pad wider than the image works
for every border rule (the reference's OpenCV / SciPy rules: 'replicate' = SciPy 'nearest', 'symmetric' = SciPy
'reflect', 'reflect101' = OpenCV's default border).
"""
import functools
import math
from typing import List, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F


def border_index(size: int, before: int, after: int, mode: str, device: torch.device) -> torch.Tensor:
    """ Source indices of a 1-D axis of `size` padded by `before` / `after` under the border rule `mode`. """
    index = torch.arange(-before, size + after, device=device)
    if mode == 'replicate':
        return index.clamp(0, size - 1)
    if mode == 'symmetric':
        index = index.remainder(2 * size)
        return torch.where(index >= size, 2 * size - 1 - index, index)
    if mode == 'reflect101':
        if size == 1:
            return torch.zeros_like(index)
        index = index.remainder(2 * size - 2)
        return torch.where(index >= size, 2 * size - 2 - index, index)
    raise ValueError(f'unknown border mode {mode!r}')


def pad2d(x: torch.Tensor, pad_h: int, pad_w: int, mode: str, extra_h: int = 0, extra_w: int = 0) -> torch.Tensor:
    """ `x` (..., H, W) padded by `pad_h` rows and `pad_w` columns on each side (plus `extra_*` after). """
    h, w = x.shape[-2:]
    native = {'replicate': 'replicate', 'reflect101': 'reflect'}.get(mode)
    if native == 'replicate' or (native == 'reflect' and max(pad_h, pad_h + extra_h) < h and
                                 max(pad_w, pad_w + extra_w) < w):
        shape = x.shape
        flat = x.reshape(-1, 1, h, w) if x.dim() != 4 else x
        out = F.pad(flat, (pad_w, pad_w + extra_w, pad_h, pad_h + extra_h), mode=native)
        return out.reshape(*shape[:-2], *out.shape[-2:])
    rows = border_index(h, pad_h, pad_h + extra_h, mode, x.device)
    cols = border_index(w, pad_w, pad_w + extra_w, mode, x.device)
    return x.index_select(-2, rows).index_select(-1, cols)


def gaussian_kernel1d(sigma: float, truncate: float) -> torch.Tensor:
    """ SciPy's `gaussian_filter1d` weights: radius int(truncate * sigma + 0.5), normalised to sum 1 (float64). """
    radius = int(truncate * sigma + 0.5)
    x = torch.arange(-radius, radius + 1, dtype=torch.float64)
    weights = torch.exp(-0.5 * (x / sigma) ** 2)
    return weights / weights.sum()


@functools.lru_cache(maxsize=64)
def filter_matrix(size: int, kernel: Tuple[float, ...], mode: str, device: torch.device, dtype: torch.dtype
                  ) -> torch.Tensor:
    """ The (size, size) matrix M with (row @ M)[o] = sum_j kernel[j] * row[border(o + j - r)]: a centred 1-D
    correlation with the border rule folded in (any kernel length, whatever the size). """
    radius = len(kernel) // 2
    outputs = torch.arange(size).repeat_interleave(len(kernel))
    sources = border_index(size, radius, radius, mode, torch.device('cpu')).unfold(0, len(kernel), 1).flatten()
    weights = torch.tensor(kernel, dtype=torch.float64).repeat(size)
    matrix = torch.zeros(size, size, dtype=torch.float64).index_put_((sources, outputs), weights, accumulate=True)
    return matrix.to(device=device, dtype=dtype)


def separable_filter(x: torch.Tensor, kernel_h: torch.Tensor, kernel_w: torch.Tensor, mode: str) -> torch.Tensor:
    """ Correlate every channel of `x` (..., H, W) with the column kernel `kernel_h` and the row kernel `kernel_w`
    (odd lengths, centred), borders by `mode`; as two matrix products (fast on CPU and GPU for blur radii). """
    h, w = x.shape[-2:]
    rows = filter_matrix(w, tuple(kernel_w.tolist()), mode, x.device, x.dtype)
    cols = filter_matrix(h, tuple(kernel_h.tolist()), mode, x.device, x.dtype)
    return cols.T @ (x @ rows)


def gaussian_blur(x: torch.Tensor, sigma: Sequence[float], mode: str = 'replicate', truncate: float = 4.0
                  ) -> torch.Tensor:
    """ SciPy / scikit-image `gaussian` of each channel: `sigma` = (rows, columns), default border 'nearest'. """
    return separable_filter(x, gaussian_kernel1d(sigma[0], truncate), gaussian_kernel1d(sigma[1], truncate), mode)


def box_blur3(x: torch.Tensor) -> torch.Tensor:
    """ OpenCV `blur(x, (3, 3))`: the 3 x 3 mean with OpenCV's default border (reflect 101). """
    ones = torch.full((3,), 1 / 3, dtype=torch.float64)
    return separable_filter(x, ones, ones, 'reflect101')


def fast_fft_size(n: int) -> int:
    """ The smallest size >= n with no prime factor above 5 (fast FFT lengths). """
    while True:
        m = n
        for p in (2, 3, 5):
            while m % p == 0:
                m //= p
        if m == 1:
            return n
        n += 1


def fft_filter(x: torch.Tensor, taps: List[torch.Tensor], mode: str, reach: Optional[int] = None) -> torch.Tensor:
    """ out[n, c, y, x] = sum_k w_k * x[n, c, y - dy_k, x - dx_k] (borders by `mode`), by FFT.

    `taps[n]` is a (K, 3) tensor of rows (dy, dx, weight) for image n (or one entry for all images). One FFT per
    channel, whatever the number of taps: the cost of a 41-tap motion blur or a 21 x 21 defocus disk is the same.
    `reach` (default: the largest shift) fixes the padding, so that an image's result does not depend on the taps
    of the other images in its batch.
    """
    n, c, h, w = x.shape
    if reach is None:
        reach = max(int(t[:, :2].abs().max().item()) if len(t) else 0 for t in taps)
    ph, pw = fast_fft_size(h + 2 * reach), fast_fft_size(w + 2 * reach)
    padded = pad2d(x, reach, reach, mode, ph - h - 2 * reach, pw - w - 2 * reach)
    kernels = torch.zeros(len(taps), ph, pw, dtype=x.dtype, device=x.device)
    for kernel, t in zip(kernels, taps):
        t = t.to(x.device)
        kernel.index_put_((t[:, 0].long().remainder(ph), t[:, 1].long().remainder(pw)), t[:, 2].to(x.dtype),
                          accumulate=True)
    spectrum = torch.fft.rfft2(padded) * torch.fft.rfft2(kernels).unsqueeze(1)
    out = torch.fft.irfft2(spectrum, s=(ph, pw))
    return out[..., reach:reach + h, reach:reach + w]


def disk_taps(kernel: torch.Tensor) -> torch.Tensor:
    """ The taps (dy, dx, weight) for `fft_filter` that correlate with the centred 2-D `kernel` (as cv2.filter2D). """
    r = kernel.shape[0] // 2
    dy, dx = torch.meshgrid(torch.arange(-r, r + 1), torch.arange(-r, r + 1), indexing='ij')
    return torch.stack([-dy.flatten().double(), -dx.flatten().double(), kernel.flatten().double()], 1)


def resize_align_corners(x: torch.Tensor, size: Sequence[int]) -> torch.Tensor:
    """ SciPy `ndimage.zoom(order=1)` to `size`: bilinear with the corner pixels of input and output aligned. """
    return F.interpolate(x, size=tuple(size), mode='bilinear', align_corners=True)


def zoom_crop_size(size: int, factor: float) -> int:
    """ The centre crop the reference's `clipped_zoom` takes before zooming by `factor`: ceil(size / factor). """
    return int(math.ceil(size / float(factor)))

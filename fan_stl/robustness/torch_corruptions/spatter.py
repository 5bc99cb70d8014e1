"""Spatter with the reference's constants: water drops (severity 1-3) or mud (4-5); (N, 3, H, W) in [0, 1].

The water drops' sheen goes through the reference's OpenCV steps, written here in torch: Canny edges (Sobel 3 x 3,
L1 magnitude, thresholds 50 / 150, 8-connected hysteresis), the 5 x 5 chamfer distance to the nearest edge
(capped at 20), box blurs, histogram equalisation and an emboss filter. All sizes are in pixels, as in the
reference (the drops do not grow with the image).
"""
import torch
import torch.nn.functional as F

from . import draws
from .filters import box_blur3, gaussian_blur, pad2d

SPATTER = ((0.65, 0.3, 4, 0.69, 0.6, 0), (0.65, 0.3, 3, 0.68, 0.6, 0), (0.65, 0.3, 2, 0.68, 0.5, 0),
           (0.65, 0.3, 1, 0.65, 1.5, 1), (0.67, 0.4, 1, 0.65, 1.5, 1))  # mean, std, sigma, threshold, gain, mud
WATER = (175 / 255, 238 / 255, 238 / 255)
MUD = (63 / 255, 42 / 255, 20 / 255)
CANNY_LOW, CANNY_HIGH = 50, 150
TAN_22_5 = 13573  # OpenCV's fixed-point tan(22.5 deg) * 2^15
CHAMFER = ((1, 0, 1.0), (0, 1, 1.0), (1, 1, 1.4), (1, -1, 1.4), (1, 2, 2.1969), (2, 1, 2.1969), (1, -2, 2.1969),
           (2, -1, 2.1969))  # 5 x 5 mask of OpenCV's DIST_L2 (and the opposite offsets)
DISTANCE_CAP = 20
EMBOSS = ((-2, -1, 0), (-1, 1, 1), (0, 1, 2))


def _shifted(x: torch.Tensor, dy: int, dx: int, fill: float) -> torch.Tensor:
    """ out[y, x] = x[y + dy, x + dx], `fill` outside. """
    h, w = x.shape[-2:]
    padded = F.pad(x, (2, 2, 2, 2), value=fill)
    return padded[..., 2 + dy:2 + dy + h, 2 + dx:2 + dx + w]


def canny(u8: torch.Tensor) -> torch.Tensor:
    """ OpenCV `Canny(u8, 50, 150)` of (N, 1, H, W) 8-bit values: a bool edge map. """
    padded = pad2d(u8, 1, 1, 'replicate')
    sobel = torch.tensor([[-1., 0., 1.], [-2., 0., 2.], [-1., 0., 1.]], dtype=u8.dtype, device=u8.device)
    dx = F.conv2d(padded, sobel.view(1, 1, 3, 3))
    dy = F.conv2d(padded, sobel.T.reshape(1, 1, 3, 3))
    magnitude = dx.abs() + dy.abs()
    ax, ay = dx.abs(), dy.abs() * 2 ** 15
    tan22 = ax * TAN_22_5
    horizontal = ay < tan22
    vertical = ay > tan22 + ax * 2 ** 16
    same_sign = (dx * dy) >= 0

    def nb(dy_: int, dx_: int) -> torch.Tensor:
        return _shifted(magnitude, dy_, dx_, 0.0)

    keep_h = (magnitude > nb(0, -1)) & (magnitude >= nb(0, 1))
    keep_v = (magnitude > nb(-1, 0)) & (magnitude >= nb(1, 0))
    keep_d = torch.where(same_sign, (magnitude > nb(-1, -1)) & (magnitude > nb(1, 1)),
                         (magnitude > nb(-1, 1)) & (magnitude > nb(1, -1)))
    maximum = torch.where(horizontal, keep_h, torch.where(vertical, keep_v, keep_d))
    candidate = maximum & (magnitude > CANNY_LOW)
    edges = candidate & (magnitude > CANNY_HIGH)
    while True:
        grown = candidate & (F.max_pool2d(edges.float(), 3, 1, 1) > 0)
        if torch.equal(grown, edges):
            return edges
        edges = grown


def chamfer_distance(edges: torch.Tensor) -> torch.Tensor:
    """ OpenCV `distanceTransform(not edges, DIST_L2, 5)` capped at 20: the 5 x 5 chamfer distance to an edge. """
    big = 1e4
    h, w = edges.shape[-2:]
    distance = torch.where(edges, 0.0, big)
    for _ in range(DISTANCE_CAP):
        padded = F.pad(distance, (2, 2, 2, 2), value=big)
        best = distance
        for dy, dx, weight in CHAMFER:
            for sy, sx in ((dy, dx), (-dy, -dx)):
                best = torch.minimum(best, padded[..., 2 + sy:2 + sy + h, 2 + sx:2 + sx + w] + weight)
        if torch.equal(best, distance):
            break
        distance = best
    return distance.clamp(max=DISTANCE_CAP)


def equalize_hist(u8: torch.Tensor) -> torch.Tensor:
    """ OpenCV `equalizeHist` of each image of (N, 1, H, W) 8-bit values. """
    n = u8.shape[0]
    values = u8.reshape(n, -1).long()
    hist = torch.zeros(n, 256, device=u8.device).scatter_add_(1, values, torch.ones_like(values, dtype=torch.float))
    first = (hist > 0).float().argmax(1, keepdim=True)
    first_count = hist.gather(1, first)
    total = values.shape[1]
    scale = (255.0 / (total - first_count).clamp_min(1)).float()
    lut = torch.round((hist.cumsum(1) - first_count) * scale).clamp(0, 255)
    lut = torch.where(first_count == total, first.float().expand(-1, 256), lut)
    return lut.gather(1, values).view_as(u8).to(u8.dtype)


def water_sheen(liquid: torch.Tensor) -> torch.Tensor:
    """ The reference's drop sheen m (before its gain) from the thresholded liquid layer (N, 1, H, W). """
    u8 = torch.floor(liquid * 255).clamp(0, 255)
    distance = chamfer_distance(canny(u8))
    distance = equalize_hist(torch.floor(box_blur3(distance)))
    emboss = torch.tensor(EMBOSS, dtype=u8.dtype, device=u8.device).view(1, 1, 3, 3)
    distance = F.conv2d(pad2d(distance, 1, 1, 'reflect101'), emboss).clamp(0, 255)
    distance = torch.round(box_blur3(distance))
    sheen = u8 * distance
    peak = sheen.amax((2, 3), keepdim=True)
    return torch.where(peak > 0, sheen / peak.clamp_min(1e-12), torch.zeros_like(sheen))


def spatter(x: torch.Tensor, severity: int, generators: draws.Generators) -> torch.Tensor:
    """ Water drops (severity 1-3) or mud (4-5) from a blurred, thresholded normal noise layer. """
    mean, std = SPATTER[severity - 1][:2]
    return spatter_from_noise(x, severity, draws.normal(generators, (1, *x.shape[-2:]), mean=mean, std=std))


def spatter_from_noise(x: torch.Tensor, severity: int, noise: torch.Tensor) -> torch.Tensor:
    """ Spatter made from the given liquid noise (N, 1, H, W) (the reference's first draw). """
    _, _, sigma, threshold, gain, mud = SPATTER[severity - 1]
    liquid = gaussian_blur(noise.double(), (sigma, sigma))
    liquid = torch.where(liquid < threshold, torch.zeros_like(liquid), liquid)
    if not mud:
        colour = torch.tensor(WATER, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
        return (x + water_sheen(liquid.float()).to(x.dtype) * gain * colour).clamp(0, 1)
    mask = gaussian_blur((liquid > threshold).double(), (gain, gain))
    mask = torch.where(mask < 0.8, torch.zeros_like(mask), mask).to(x.dtype)
    colour = torch.tensor(MUD, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
    return (x * (1 - mask) + colour * mask).clamp(0, 1)

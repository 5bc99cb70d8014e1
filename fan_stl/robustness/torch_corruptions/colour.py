"""RGB <-> HSV as scikit-image computes them (hue in [0, 1); on ties red < green < blue decide the hue)."""
import torch


def rgb_to_hsv(x: torch.Tensor) -> torch.Tensor:
    r, g, b = x.unbind(1)
    value = x.amax(1)
    delta = value - x.amin(1)
    safe_delta = torch.where(delta == 0, torch.ones_like(delta), delta)
    saturation = torch.where(value == 0, torch.zeros_like(value), delta / torch.where(value == 0, 1, value))
    hue = torch.where(r == value, (g - b) / safe_delta, torch.zeros_like(value))
    hue = torch.where(g == value, 2 + (b - r) / safe_delta, hue)
    hue = torch.where(b == value, 4 + (r - g) / safe_delta, hue)
    hue = torch.where(delta == 0, torch.zeros_like(hue), (hue / 6).remainder(1))
    return torch.stack([hue, saturation, value], 1)


def hsv_to_rgb(x: torch.Tensor) -> torch.Tensor:
    hue, saturation, value = x.unbind(1)
    sector = torch.floor(hue * 6)
    fraction = hue * 6 - sector
    p = value * (1 - saturation)
    q = value * (1 - fraction * saturation)
    t = value * (1 - (1 - fraction) * saturation)
    choices = torch.stack([
        torch.stack([value, t, p], 1), torch.stack([q, value, p], 1), torch.stack([p, value, t], 1),
        torch.stack([p, q, value], 1), torch.stack([t, p, value], 1), torch.stack([value, p, q], 1)], 0)
    sector = sector.long().remainder(6)
    return choices.gather(0, sector[None, :, None].expand(1, -1, 3, -1, -1))[0]

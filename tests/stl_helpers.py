"""Test doubles shared by the STL data / mixing / engine tests."""
import torch
import torch.nn as nn
import torch.nn.functional as F
from PIL import Image
from torch.utils.data import Dataset


class PixelTeacher(nn.Module):
    """ A teacher whose token logits are a function of the pixels under each 16x16 token: their mean RGB (K = 3). """

    num_classes = 3

    def __init__(self):
        super().__init__()
        self.aux_head = nn.Identity()

    def forward_dense(self, x: torch.Tensor):
        tokens = F.avg_pool2d(x.float(), 16).flatten(2).transpose(1, 2) * 4.
        return tokens.mean(1), tokens


class ColourDataset(Dataset):
    """ Constant-colour PIL images, class = index % len(colours), with a timm-style `transform` attribute. """

    def __init__(self, colours, length: int = 8, size=(80, 96)):
        self.colours = colours
        self.length = length
        self.size = size
        self.transform = None

    def __len__(self):
        return self.length

    def __getitem__(self, index):
        label = index % len(self.colours)
        img = Image.new('RGB', self.size, self.colours[label])
        return (img if self.transform is None else self.transform(img)), label


def random_blocks_image(seed: int, size=(112, 96)) -> Image.Image:
    """ A PIL image of random 8x8 colour blocks (structure everywhere, so any misalignment shows). """
    g = torch.Generator().manual_seed(seed)
    blocks = torch.randint(0, 256, (3, size[1] // 8, size[0] // 8), generator=g, dtype=torch.uint8)
    pixels = blocks.repeat_interleave(8, 1).repeat_interleave(8, 2)
    return Image.fromarray(pixels.permute(1, 2, 0).numpy())

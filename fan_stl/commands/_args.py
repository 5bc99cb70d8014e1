"""Argument types shared by the commands (standard library only, so building the parser stays light)."""
import argparse

TOKEN_STRIDE = 16  # FAN's patch grid: input sides must be multiples of it (fan_stl.models.fan.TOKEN_STRIDE)


def image_size(text: str) -> int:
    """ argparse type: a positive multiple of 16, the input sides every FAN model accepts. """
    try:
        size = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f'{text!r} is not a whole number of pixels') from None
    if size <= 0 or size % TOKEN_STRIDE:
        nearest = max(TOKEN_STRIDE, round(size / TOKEN_STRIDE) * TOKEN_STRIDE)
        raise argparse.ArgumentTypeError(
            f'{size} is not a positive multiple of {TOKEN_STRIDE} (FAN models need sides that are); try {nearest}')
    return size


def positive_int(text: str) -> int:
    """ argparse type: a whole number >= 1. """
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f'{text!r} is not a whole number') from None
    if value < 1:
        raise argparse.ArgumentTypeError(f'{value} must be at least 1')
    return value

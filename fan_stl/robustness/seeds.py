"""The seed of one corrupted image: both corruption backends derive it the same way (standard library only)."""
import hashlib


def cell_seed(seed: int, relative_path: str, corruption: str, severity: int) -> int:
    """ A 32-bit seed that depends only on the run seed, the image's relative path, the corruption and severity. """
    key = f'{seed}|{relative_path}|{corruption}|{severity}'.encode()
    return int.from_bytes(hashlib.sha256(key).digest()[:4], 'little')

"""Seeds derived from the config seed and stable keys, so a random draw never depends on
batch, shard or process: the same (seed, question, prompt) always gives the same draw."""

import zlib

import numpy as np


def stable_seed(seed: int, *keys: str | int) -> int:
    """A 32-bit seed from a config seed and any mix of string and integer keys."""
    entropy = [int(seed)] + [zlib.crc32(k.encode()) if isinstance(k, str) else int(k) for k in keys]
    return int(np.random.SeedSequence(entropy).generate_state(1)[0])


def rng_for(seed: int, *keys: str | int) -> np.random.Generator:
    return np.random.default_rng(stable_seed(seed, *keys))

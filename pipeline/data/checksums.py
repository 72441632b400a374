"""Known SHA-256 sums of the decompressed IDX content, and their verification.

Decompressed content is what we check because it is the same for the official files and for mirrors that
recompressed them (see shared data README: MNIST's train images). Sums are keyed by the decompressed file name
(mapping files are plain text: their sum is of the file itself).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping

from pipeline.core.errors import UserError

KNOWN_SHA256: dict[str, str] = {
    # MNIST, the official files
    "train-images-idx3-ubyte": "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
    "train-labels-idx1-ubyte": "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
    "t10k-images-idx3-ubyte": "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
    "t10k-labels-idx1-ubyte": "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
    # EMNIST, NIST's files (those whose content we have verified)
    "emnist-balanced-test-labels-idx1-ubyte": "91807a38b4dab13f65fed7d9cac9fa6e7d27fc8c24f52327b8e6435ebfe18e90",
    "emnist-balanced-train-labels-idx1-ubyte": "a9c2984bf327d013e469d8b66e4bf6e4e98aaeebddc35d1c869b2cd3d1806e12",
    "emnist-byclass-test-images-idx3-ubyte": "385559d7d5c96f49cd6b55b3e9e76d7ecbf568897b6067e8cac8f1ffc2f50f81",
    "emnist-byclass-test-labels-idx1-ubyte": "842d01413932b3ce7afbc9990376a16f8880a212bb42d66fa2922b4218cf300a",
    "emnist-bymerge-test-images-idx3-ubyte": "68b2763a83f2661dace0df055282a50f4d4aea3dab401f2a04e2e7e2c5bc8590",
    "emnist-bymerge-test-labels-idx1-ubyte": "17b8bd69b4e584fa425d7268b1f58882ef4bf7f241a6116fa606bb6d36839b5a",
    "emnist-digits-test-labels-idx1-ubyte": "a456cc5cfc928851403b513f94937b9d7570f424ea6d56dce3b28f6c0723608a",
    "emnist-digits-train-labels-idx1-ubyte": "86013a4b932e35477a90ecff239cf492643795cf3c68dd6b7fae3264fb24316b",
    # EMNIST's mapping files (class index -> ASCII code), as in NIST's archive
    "emnist-balanced-mapping.txt": "956dc507bf69e9f31f4e3e876d22ec66124aa229b5d0bd65ab8956a8044d3ede",
    "emnist-byclass-mapping.txt": "68fa9091ed325830418b5a8d732f32316e54a480b9f8994a161abb4eddd0d078",
    "emnist-bymerge-mapping.txt": "956dc507bf69e9f31f4e3e876d22ec66124aa229b5d0bd65ab8956a8044d3ede",
    "emnist-digits-mapping.txt": "6d157dc46a7b1c80d630f4fed571d9964db37ee1669cac403b6db2c8bb109d94",
    "emnist-letters-mapping.txt": "a56cb9a31c08e3251a61ea7b1ec8bc4f4cabdc1edf3128508d3a485ad53fa456",
    "emnist-mnist-mapping.txt": "6d157dc46a7b1c80d630f4fed571d9964db37ee1669cac403b6db2c8bb109d94",
}


class ChecksumError(UserError, ValueError):
    """Content whose SHA-256 differs from the known sum."""


def known_sums(extra: Mapping[str, str]) -> dict[str, str]:
    """The sums above and those the user adds in the config (`ingest.checksums`), the user's taking precedence."""
    return {**KNOWN_SHA256, **extra}


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def verify(name: str, data: bytes, source: str, known: Mapping[str, str] = KNOWN_SHA256) -> str | None:
    """Check `data` (decompressed content of file `name`, read from `source`) against its known sum.

    Returns the digest, or None when no sum is known for `name` (the caller says so to the user).
    """
    expected = known.get(name)
    if expected is None:
        return None
    actual = sha256(data)
    if actual != expected:
        raise ChecksumError(
            f"{source}: SHA-256 of the decompressed content is {actual[:16]}…, expected {expected[:16]}… "
            f"— the file is corrupt or not the official {name}"
        )
    return actual

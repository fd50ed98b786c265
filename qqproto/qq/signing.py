"""The ed25519 key of a bot's webhook, and the signatures made and checked with it.

The platform signs each callback, and the bot signs its answer to op 13, with
one key pair derived from the AppSecret (spec 10.1): the secret's UTF-8
bytes, repeated until there are 32, cut to 32, are the private key's seed.

The curve arithmetic is the ``cryptography`` package's (OpenSSL's): the
``qqproto[webhook]`` extra installs it, and only this module imports it, on
first use, so a gateway bot never needs it.
"""

from __future__ import annotations

import binascii
from typing import TYPE_CHECKING, Final

from ..errors import ConfigError

if TYPE_CHECKING:
    # Without the extra (a gateway bot's install), a type checker that follows
    # this module still must not fail: the imports may be missing.
    from cryptography.hazmat.primitives.asymmetric.ed25519 import (  # type: ignore[import-not-found,unused-ignore]
        Ed25519PrivateKey,
        Ed25519PublicKey,
    )

__all__ = ["CallbackKey", "derive_seed"]

SEED_SIZE: Final = 32
SIGNATURE_SIZE: Final = 64


def derive_seed(secret: str) -> bytes:
    """The 32-byte ed25519 seed of ``secret`` (spec 10.1)."""
    raw = secret.encode()
    if not raw:
        raise ConfigError("secret", "a non-empty AppSecret", secret)
    return (raw * (SEED_SIZE // len(raw) + 1))[:SEED_SIZE]


def _ed25519() -> tuple[type[Ed25519PrivateKey], type[Exception]]:
    try:
        from cryptography.exceptions import InvalidSignature  # type: ignore[import-not-found,unused-ignore]
        from cryptography.hazmat.primitives.asymmetric.ed25519 import (  # type: ignore[import-not-found,unused-ignore]
            Ed25519PrivateKey,
        )
    except ImportError:  # pragma: no cover - the extra is part of the dev install
        raise ImportError(
            "webhooks verify ed25519 signatures with the cryptography package: "
            "pip install 'qqproto[webhook]'"
        ) from None
    return Ed25519PrivateKey, InvalidSignature


class CallbackKey:
    """The key pair of one bot's callbacks: :meth:`sign` and :meth:`verify`."""

    __slots__ = ("_invalid", "_private", "_public")

    def __init__(self, secret: str) -> None:
        private_key, invalid = _ed25519()
        self._private: Ed25519PrivateKey = private_key.from_private_bytes(derive_seed(secret))
        self._public: Ed25519PublicKey = self._private.public_key()
        self._invalid = invalid

    @property
    def public_bytes(self) -> bytes:
        """The raw 32-byte public key (spec 10.1's test vector is one)."""
        from cryptography.hazmat.primitives.serialization import (  # type: ignore[import-not-found,unused-ignore]
            Encoding,
            PublicFormat,
        )

        return bytes(self._public.public_bytes(Encoding.Raw, PublicFormat.Raw))

    def sign(self, message: bytes) -> bytes:
        return bytes(self._private.sign(message))

    def verify(self, signature_hex: str, message: bytes) -> bool:
        """Whether ``signature_hex`` (the ``X-Signature-Ed25519`` header) signs
        ``message``. A signature of the wrong length, or whose last byte has
        any of its top three bits set (no valid signature does, spec 10.2), is
        refused before the curve is asked. The check takes the same time
        whatever the signature is (OpenSSL's verify is constant-time)."""
        try:
            signature = binascii.unhexlify(signature_hex)
        except (binascii.Error, ValueError):
            return False
        if len(signature) != SIGNATURE_SIZE or signature[63] & 0xE0:
            return False
        try:
            self._public.verify(signature, message)
        except self._invalid:
            return False
        return True

    def __repr__(self) -> str:
        return "CallbackKey(<secret>)"

"""Hashing of API client secrets.

A client secret is 128 random characters made by the toolkit (some 760
bits): nobody can guess one, so a slow hash (Argon2id, the first of
PASSWORD_HASHERS, some 30 ms of CPU) would protect nothing a salted SHA-256
does not, and would cost that CPU on every token request of every client.
Slow hashes exist for low-entropy secrets people choose; these are not.

The hasher sits last in PASSWORD_HASHERS only because the toolkit looks its
CLIENT_SECRET_HASHER up there. No account password is ever made with it
(`make_password` uses the first hasher), and a stored hash of this kind on an
account would be replaced by Argon2id at its next login.
"""

import hashlib

from django.contrib.auth.hashers import BasePasswordHasher, mask_hash
from django.utils.crypto import constant_time_compare


class ClientSecretHasher(BasePasswordHasher):
    algorithm = "client_sha256"

    def encode(self, password, salt):
        self._check_encode_args(password, salt)
        digest = hashlib.sha256(f"{salt}${password}".encode()).hexdigest()
        return f"{self.algorithm}${salt}${digest}"

    def decode(self, encoded):
        algorithm, salt, digest = encoded.split("$", 2)
        if algorithm != self.algorithm:
            raise ValueError("not a client secret hash")
        return {"algorithm": algorithm, "hash": digest, "salt": salt}

    def verify(self, password, encoded):
        decoded = self.decode(encoded)
        return constant_time_compare(encoded, self.encode(password, decoded["salt"]))

    def safe_summary(self, encoded):
        decoded = self.decode(encoded)
        return {
            "algorithm": decoded["algorithm"],
            "salt": mask_hash(decoded["salt"], show=2),
            "hash": mask_hash(decoded["hash"]),
        }

    def must_update(self, encoded):
        return False

    def harden_runtime(self, password, encoded):
        pass

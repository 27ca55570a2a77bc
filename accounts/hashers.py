"""Password hashing at OWASP's Argon2id parameters.

Django's stock Argon2 hasher uses 100 MiB and 8 lanes; OWASP's password
storage cheat sheet gives m=19 MiB, t=2, p=1 as a minimum that keeps a login
cheap enough to serve many users per core. Same algorithm name, so Django's
`must_update` upgrades hashes made with other parameters (or other hashers)
at the next successful login.
"""

from django.contrib.auth.hashers import Argon2PasswordHasher


class OwaspArgon2PasswordHasher(Argon2PasswordHasher):
    time_cost = 2
    memory_cost = 19 * 1024  # KiB
    parallelism = 1

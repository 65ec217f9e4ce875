"""The catalogue's version and the fingerprint it was given for. Written by `make regen`
(`stream.core.rules.fingerprint`): never edit the fingerprint by hand; a new series (the
year and month) may be started by editing the version."""

RULESET_VERSION = "2026.12.0"
FINGERPRINT = "sha256:0cf4cbeb40262328f2b8ab8c2093fcbce6cbdc9d166d9ec22425ac43ea7a390a"

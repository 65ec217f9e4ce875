"""The catalogue's version and the fingerprint it was given for. Written by `make regen`
(`stream.core.rules.fingerprint`): never edit the fingerprint by hand; a new series (the
year and month) may be started by editing the version."""

RULESET_VERSION = "2026.12.1"
FINGERPRINT = "sha256:95d6cc3f77ae1896367ae47adef6b208ed6ca155555de7d4b59744da9a29165b"

"""The catalogue's version and the fingerprint it was given for. Written by `make regen`
(`stream.core.rules.fingerprint`): never edit the fingerprint by hand; a new series (the
year and month) may be started by editing the version."""

RULESET_VERSION = "2026.12.3"
FINGERPRINT = "sha256:4d2259a72bc0115f3824eed757a43c29073926f2cf3ed1736acf1e1c44343d6d"

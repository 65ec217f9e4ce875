"""The catalogue's version and the fingerprint it was given for. Written by `make regen`
(`stream.core.rules.fingerprint`): never edit the fingerprint by hand; a new series (the
year and month) may be started by editing the version."""

RULESET_VERSION = "2026.12.2"
FINGERPRINT = "sha256:56f140a11375f36f96eab2b713bd813283be03e129cc386bcd5f0971fd51c7e7"

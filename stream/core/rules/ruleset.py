"""The catalogue's version and the fingerprint it was given for. Written by `make regen`
(`stream.core.rules.fingerprint`): never edit the fingerprint by hand; a new series (the
year and month) may be started by editing the version."""

RULESET_VERSION = "2026.12.1"
FINGERPRINT = "sha256:aded5cc82020866e3573e2f02a36fe22fc897f4f580b5c2f17a4a2d90c48d23a"

"""The local Kafka cluster: what `claims-stage broker` and `claims-stage run` start when no
broker is configured, and what the integration tests start on free ports.

It assembles Apache Kafka from Maven Central and drives the JVMs with `java`, `mvn`,
`keytool` and a TCP probe: stdlib only, no Kafka client. The rest of `stream.kafka` talks to
any broker and never imports this package; only the command line (and the tests and the
benchmarks) do.
"""

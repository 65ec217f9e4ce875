"""The pure decision: the wire contract, code metadata, the rules and `decide`.

Nothing in this package talks to a broker or exports metrics: it imports no Kafka client,
Faust or Prometheus (a test enforces it), so the batch command, the worker, the tests and
the benchmarks all call the same functions.
"""

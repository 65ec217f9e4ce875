"""The stream worker: the Faust app and its agent, wiring the core, Kafka and operations."""

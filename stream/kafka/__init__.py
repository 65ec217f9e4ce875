"""Everything that talks to a Kafka broker: clients, topics, send and tail, lag, the local broker."""

"""Everything that talks to a Kafka broker: clients, topics, send and tail, lag; and, in
`local/`, the local cluster the command line starts when no broker is configured."""

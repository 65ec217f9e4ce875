"""What operators read: metrics, the Faust sensor, health and the status page."""

"""Stream processors: Faust agents over the input, alert and dead-letter topics."""

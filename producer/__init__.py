"""The producer: enqueues the lab's iterations, waits for every record, writes the results."""

"""What runs, and what it costs in theory. Knows nothing of pytest."""

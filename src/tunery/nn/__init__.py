"""The NumPy deep-learning engine (rows are examples: ``x: (N, D)``)."""

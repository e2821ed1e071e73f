"""What a trained encoder is worth: ``features`` (feature banks), ``probes`` (linear and
k-NN, chapter 05) and ``diagnostics`` (the collapse statistics the training loop logs).
"""

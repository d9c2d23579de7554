"""Training code for the trial image and the quickstart."""

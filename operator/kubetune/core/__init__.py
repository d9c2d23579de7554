"""The pure core: decisions from objects, no Kubernetes, no HTTP, no clock reads."""

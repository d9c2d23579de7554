"""kubetune: Kubernetes-native hyperparameter tuning, run as the tuning playbook describes."""

__version__ = "0.1.0"

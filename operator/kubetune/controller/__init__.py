"""The operator: kopf handlers that carry out the core's plans against the API server.

Layering (checked by tests/unit/test_layers.py): controller -> core/analysis/stopping
-> api. Nothing under core, stopping, analysis, sampling or api imports kopf,
kubernetes or HTTP.
"""

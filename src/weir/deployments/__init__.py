"""Deployments: the weir.yaml model, loading, pull steps, applying, and running a deployment's flow run."""

"""The Kubeflow Model Registry REST edge over the lineage graph."""

"""lineagehub: a model registry whose heart is a lineage graph."""

__version__ = "0.1.0"

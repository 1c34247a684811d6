"""The edges of lineagehub: protocols that translate to and from ``lineagehub.graph``."""

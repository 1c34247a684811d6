"""The GraphQL edge: thin Strawberry types, inputs and resolvers over ``lineagehub.graph``."""

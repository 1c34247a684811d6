"""The registry domain over Neo4j: operations and their parameterised Cypher.

Nothing here knows about GraphQL or HTTP; the edges in ``lineagehub.api`` call these
operations and translate their results.
"""

"""Several server processes as one: the node registry, the request/reply bus on Redis, and the
routing of call and tour events.
"""

"""The wire contract: what crosses HTTP, defined once and shared by both ends.

``schemas`` holds the HTTP API's bodies (one pydantic model per purpose), which the server's
routes validate and answer with and the client and the CLI parse; ``protocol`` holds the
agent protocol's records and their JSON encoding, used by the server's agent routes and by the
agent; ``wire`` the numbers, flags and error texts both take. The package imports nothing of
Ferry's but the domain and ``errors``, so that a client need not load the server to read
what it answers.
"""

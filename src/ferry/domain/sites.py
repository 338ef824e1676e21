"""The names of sites that are not a storage's: a channel's wildcard, and the two ends no
storage may take (an endpoint outside the registry, the client's own machine)."""

ANY_SITE = "*"
UNKNOWN_SITE = "UNKNOWN"  # the site of endpoints outside the registry; no storage may take it
CLIENT_SITE = "CLIENT"  # the client's machine, one end of a passive transfer (push, pull)
RESERVED_SITES = (UNKNOWN_SITE, CLIENT_SITE)

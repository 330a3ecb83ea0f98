"""Bearer tokens as standard JWTs (PyJWT): the built-in HS256 issuer and host-issued tokens."""

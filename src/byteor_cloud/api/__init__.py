"""The HTTP edge: app factory, dependencies, error mapping and the v1 routers."""

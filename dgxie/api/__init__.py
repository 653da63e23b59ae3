"""HTTP: the admin API (`v1/`), boot endpoints, mirror read API, auth."""

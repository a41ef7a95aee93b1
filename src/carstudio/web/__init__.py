"""Car Studio's web layer: the Car Creation page and the JSON API, both thin."""

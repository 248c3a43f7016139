"""consnap REST API (Pecan, JSON, microversions; Ironic layout)."""

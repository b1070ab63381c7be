"""ROPOS business rules in plain Python: no I/O, no framework imports, nothing of the project
outside this package."""

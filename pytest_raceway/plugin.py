"""pytest11 entry point of Raceway (options only; the detector loads with --raceway)."""

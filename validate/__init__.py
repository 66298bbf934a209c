"""driftsched.validate — see README.md (not built yet)."""

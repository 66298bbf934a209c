"""driftsched.sim — see README.md (not built yet)."""

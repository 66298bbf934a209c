"""driftsched.calibrate — see README.md (not built yet)."""

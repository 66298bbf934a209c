"""The ground floor: plumbing every subsystem may import, and that imports none of them.

- :mod:`.errors`: one-line user errors (exit 2) and :class:`~.errors.UnknownNameError`
- :mod:`.config`: validated, immutable configuration (pydantic) with one-line failures
- :mod:`.registry`: named tables of extensions (policies, correctors, routers, ...)
- :mod:`.parse`: comma lists and ``KEY=VALUE`` pairs from the command line and spec files
- :mod:`.atomic`: atomic file writes (a failed run never leaves a half-written file)
- :mod:`.rng`: named, seeded random streams
- :mod:`.console`: rich tables and the one-line error format

Rule (checked by ``tests/test_layout.py``): nothing here imports ``driftsched.sim``,
``driftsched.traces``, ``driftsched.calibrate``, ``driftsched.validate`` or the CLI.
"""

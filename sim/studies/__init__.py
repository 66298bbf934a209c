"""Studies built on the model: what users run, not how serving works.

- :mod:`.compare`: every (policy, corrector) on one trace
- :mod:`.paper`: the reference study reproduced, side by side with its reported results
- :mod:`.workload`: a workload shape re-scaled to an offered rate (for sweeps and capacity)
- :mod:`.sweep`: grids of runs over load, policy, corrector, mode, replicas, seeds (local or Ray)
- :mod:`.capacity`: the highest sustainable rate within SLOs, the fewest replicas for a rate
- :mod:`.plots`, :mod:`.report`: figures, and one self-contained HTML page of any output folder

The model they drive — gateway, dispatcher, engine, cost model, driver — is the parent package.
"""

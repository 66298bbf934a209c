"""Live services: the simulator's objects behind HTTP.

- :mod:`.realtime` — :class:`~.realtime.RealtimeEngine`, driftsched's engine model (the
  pure state machine of :mod:`driftsched.sim.engine`) paced by the wall clock at the profile's
  step times.
- :mod:`.engine_app` — ``driftsched engine serve``: an OpenAI-compatible server that behaves
  like ``vllm serve`` on the profile's hardware, with vLLM's metric names
  (:mod:`.engine_metrics`).
- :mod:`.openai_api` — the OpenAI request and response shapes both servers speak.
- :mod:`.server` — running an app under uvicorn: loopback by default, stopped on every exit.

Needs the ``serve`` extra (FastAPI, uvicorn, httpx, prometheus-client).
"""

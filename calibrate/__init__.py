"""driftsched.calibrate: cost-model profiles — roofline priors now (``prior``); profiling a real
vLLM engine and fitting (issue 4) next."""

"""driftsched.validate: run sampled scenarios live on vLLM and measure the simulator's error."""

"""The Floorgate benchmark: a mock upstream, a floor forwarder, Floorgate and LiteLLM under wrk."""

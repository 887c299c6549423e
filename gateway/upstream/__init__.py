"""Calling models: OpenAI-wire upstreams directly, every other provider through litellm."""

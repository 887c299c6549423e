"""Floorgate: an OpenAI-compatible gateway that routes agent workflows by calibration."""

__version__ = "0.1.0"

"""The HTTP layer: raw ASGI for the OpenAI hot path, FastAPI for everything else."""

"""Estimated cost per token, from the price table litellm ships as JSON.

Read without importing litellm (which costs seconds), once, off the start-up path: until it
has loaded, costs are simply not counted.
"""

from __future__ import annotations

import importlib.util
import logging
from pathlib import Path

import orjson

from gateway.policy.model import ModelSpec

log = logging.getLogger(__name__)
TABLE = "model_prices_and_context_window_backup.json"
Price = tuple[float, float]  # dollars per input token, per output token


def table_path() -> Path | None:
    spec = importlib.util.find_spec("litellm")
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations))) / TABLE


class PriceTable:
    def __init__(self) -> None:
        self._table: dict[str, Price] | None = None

    def load(self) -> None:
        path = table_path()
        try:
            raw = orjson.loads(path.read_bytes()) if path else {}
        except (OSError, orjson.JSONDecodeError) as exc:
            log.warning("no price table, costs will not be estimated: %s", exc)
            raw = {}
        self._table = {
            name: (float(entry["input_cost_per_token"]), float(entry["output_cost_per_token"]))
            for name, entry in raw.items()
            if isinstance(entry, dict)
            and isinstance(entry.get("input_cost_per_token"), int | float)
            and isinstance(entry.get("output_cost_per_token"), int | float)
        }

    def price(self, spec: ModelSpec) -> Price | None:
        if self._table is None:
            return None
        return self._table.get(f"{spec.provider}/{spec.model}") or self._table.get(spec.model)

    def cost(self, spec: ModelSpec, input_tokens: int, output_tokens: int) -> float | None:
        price = self.price(spec)
        if price is None:
            return None
        return input_tokens * price[0] + output_tokens * price[1]

import time

import requests


def fetch(url, attempts=3):
    for attempt in range(attempts):
        try:
            return requests.get(url, timeout=5).json()
        except Exception:
            time.sleep(2 ** attempt)
    return requests.get(url, timeout=5).json()

"""Reading the windows a running meter has written since the last call
(windows.jsonl, docs/recording.md), for callbacks that log per-step energy."""

from __future__ import annotations

import json
import os
from typing import Any, Dict, List


class WindowsTail:
    """The window ends and marks appended to DIR/windows.jsonl since the last read."""

    def __init__(self, dir: str) -> None:
        self.path = os.path.join(dir, "windows.jsonl")
        self.offset = 0

    def read(self) -> List[Dict[str, Any]]:
        try:
            with open(self.path, "rb") as f:
                f.seek(self.offset)
                data = f.read()
        except OSError:
            return []
        end = data.rfind(b"\n") + 1  # whole lines only: the writer appends whole lines
        self.offset += end
        out: List[Dict[str, Any]] = []
        for line in data[:end].splitlines():
            try:
                o = json.loads(line)
            except ValueError:
                continue
            if isinstance(o, dict) and o.get("event") in ("end", "mark"):
                out.append(o)
        return out

"""Sample function as a componentize-py component of the faas:function world.

handle(input) returns Ok with the compact JSON text
{"hello":<direct_inputs.name or "world">,"lang":"python"}, or Err(message) when
the input is not JSON (the execution then fails).
"""

import json
import sys

import wit_world
from componentize_py_types import Err


class WitWorld(wit_world.WitWorld):
    def handle(self, input: str) -> str:
        print(f"python-hello called ({len(input)} bytes of input)", file=sys.stderr)
        try:
            data = json.loads(input) if input.strip() else {}
        except ValueError as e:
            raise Err(f"input is not valid JSON: {e}")
        name = "world"
        if isinstance(data, dict):
            direct = data.get("direct_inputs")
            if isinstance(direct, dict) and isinstance(direct.get("name"), str):
                name = direct["name"]
        return json.dumps({"hello": name, "lang": "python"}, separators=(",", ":"))

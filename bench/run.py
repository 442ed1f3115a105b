"""Run every benchmark in this directory in turn and print what each reports."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def main() -> int:
    here = Path(__file__).resolve().parent
    failures = 0
    for script in sorted(here.glob("*.py")):
        if script.name == Path(__file__).name:
            continue
        print(f"== {script.stem}", flush=True)
        completed = subprocess.run([sys.executable, str(script)], cwd=here.parent, check=False)
        failures += completed.returncode != 0
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())

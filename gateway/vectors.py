"""Write the protocol's known-answer vectors: ``python -m gateway.vectors docs/vectors``.

The vectors themselves are built by :mod:`crypto.vectors` (pure); this module only writes
one ``<name>.json`` per document and reports what changed.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from crypto.vectors import build_all, render


def write_vectors(directory: Path) -> list[str]:
    """Write every vector file into ``directory``; return the names whose text changed."""
    directory.mkdir(parents=True, exist_ok=True)
    changed = []
    for name, vector in build_all().items():
        path = directory / f"{name}.json"
        text = render(vector)
        if not path.exists() or path.read_text(encoding="utf-8") != text:
            path.write_text(text, encoding="utf-8")
            changed.append(name)
    return changed


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m gateway.vectors",
                                     description="write docs/vectors/*.json")
    parser.add_argument("directory", type=Path, help="output folder, usually docs/vectors")
    args = parser.parse_args(argv)
    changed = write_vectors(args.directory)
    print(f"{len(changed)} vector file(s) written to {args.directory}"
          + (f": {', '.join(changed)}" if changed else " (all up to date)"))
    return 0


if __name__ == "__main__":
    sys.exit(main())

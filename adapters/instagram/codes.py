"""Instagram Send API error codes: Messenger's table (same Send API) plus Instagram subcodes.

2534022 ("outside of allowed window") is mapped the same way by third-party code
(platforms.md §3.3, [2nd]); the generic Graph table lives in :mod:`adapters.meta_common`.
"""

from __future__ import annotations

from collections.abc import Mapping

from adapters.errors import WindowClosed
from adapters.messenger import codes as messenger
from adapters.meta_common import Rule

SUBCODES: Mapping[int, Rule] = {
    **messenger.SUBCODES,
    2534022: Rule(WindowClosed, "outside the allowed messaging window"),
}

CODES: Mapping[int, Rule] = messenger.CODES

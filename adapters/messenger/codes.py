"""Messenger Send API error codes on top of the generic Graph table in :mod:`adapters.meta_common`.

Sources: Meta's Messenger "Common Error Codes" page (2026), its changelog (1893063), and
courier's fixtures (36000). Subcodes are unique across Graph, so they are matched first.
"""

from __future__ import annotations

from collections.abc import Mapping

from adapters.errors import Permanent, WindowClosed
from adapters.meta_common import Rule

SUBCODES: Mapping[int, Rule] = {
    2018278: Rule(WindowClosed, "outside the allowed messaging window"),
    1545041: Rule(Permanent, "recipient is unavailable (blocked the Page or messages off)"),
    2018001: Rule(Permanent, "no user matches this recipient id"),
    2018108: Rule(Permanent, "an app in development mode can only message its testers"),
    1893063: Rule(Permanent, "the Page is temporarily restricted from messaging"),
    2018344: Rule(Permanent, "the Page has not accepted the messaging terms"),
}

CODES: Mapping[int, Rule] = {
    551: Rule(Permanent, "recipient is unavailable"),
    36000: Rule(Permanent, "attachment too large"),
}

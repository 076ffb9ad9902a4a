"""The flash-sale alert rule: many views, few purchases, in one window.

The window stage applies it once, at a window's first view past the views threshold
(`PartitionWindows`); the web applies it to a window's counts as they stand. Purchases only
grow, so a window whose final counts qualify was qualifying when it was decided.
"""

from __future__ import annotations


def qualifies(views: int, purchases: int, views_threshold: int, purchases_threshold: int) -> bool:
    """Whether a window with these counts meets the rule: views above the views threshold
    and purchases below the purchases threshold."""
    return views > views_threshold and purchases < purchases_threshold

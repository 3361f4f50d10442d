"""Follow-up tasks for shopping guides: which lifecycle stages call for a guide's action."""

from __future__ import annotations


def task_stages(knee: int | None) -> dict[str, str]:
    """Stage -> task: win back who went quiet; bring a new member one order before the
    knee back for the order from which members stay."""
    tasks = {"at_risk": "task.win_back_at_risk", "lapsed": "task.win_back_lapsed"}
    if knee is not None and knee >= 2:
        tasks[f"new_{knee - 1}"] = "task.next_order"
    return tasks

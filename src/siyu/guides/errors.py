"""The guides domain's errors; each `code` is the API problem's `code` member."""

from __future__ import annotations

from siyu.errors import ConflictError, ForbiddenError, NotFoundError


class TaskNotFound(NotFoundError):
    """No task of that id in the brand group."""

    code = "task_not_found"

    def __init__(self, task_id: int) -> None:
        self.task_id = task_id
        super().__init__(f"task_id: no task {task_id}")


class NotYourTask(ForbiddenError):
    """A guide acts only on its own tasks (HQ on any)."""

    code = "task_forbidden"

    def __init__(self, task_id: int) -> None:
        self.task_id = task_id
        super().__init__(
            f"task_id: task {task_id} is not yours: a guide acts only on its own tasks, "
            "HQ admins on any"
        )


class TaskTransitionRefused(ConflictError):
    """The task's state does not allow the change asked for; nothing was applied."""

    code = "task_transition"

    def __init__(self, task_id: int, current: str, wanted: str, rule: str) -> None:
        self.task_id, self.current, self.wanted, self.rule = task_id, current, wanted, rule
        super().__init__(f"task {task_id} is {current}, cannot become {wanted}: {rule}")


class TaskCampaignNotFound(NotFoundError):
    """No HQ task document of that code in the brand group."""

    code = "task_campaign_not_found"

    def __init__(self, code: str) -> None:
        self.task_code = code
        super().__init__(f"code: no task document {code!r}")


class TaskCampaignExists(ConflictError):
    """A different document already holds the code: its tasks carry it, so it is not
    rewritten."""

    code = "task_campaign_exists"

    def __init__(self, code: str) -> None:
        self.task_code = code
        super().__init__(f"code: a different task document {code!r} exists; use a new code")


class TrainingNotFound(NotFoundError):
    """No training item of that code in the brand group."""

    code = "training_not_found"

    def __init__(self, code: str) -> None:
        super().__init__(f"code: no training item {code!r}")

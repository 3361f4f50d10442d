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


class GuideNotFound(NotFoundError):
    """No guide of that id in the brand group's reference data (`guides`)."""

    code = "guide_not_found"

    def __init__(self, guide_id: str) -> None:
        self.guide_id = guide_id
        super().__init__(f"guide_id: no guide {guide_id!r} in the brand group")


class GuideLeft(ConflictError):
    """The guide was released (left the brand): nobody is bound or attributed to it anew."""

    code = "guide_left"

    def __init__(self, guide_id: str) -> None:
        self.guide_id = guide_id
        super().__init__(f"guide_id: guide {guide_id!r} has left; bind members to another guide")


class ShareNotFound(NotFoundError):
    """No share of that code in the brand group."""

    code = "share_not_found"

    def __init__(self, share_code: str) -> None:
        self.share_code = share_code
        super().__init__(f"share_code: no share {share_code!r}")


class ShareCodeTaken(ConflictError):
    """A share code is unique in the brand group; this one names another guide's share or
    another target."""

    code = "share_code_taken"

    def __init__(self, share_code: str) -> None:
        self.share_code = share_code
        super().__init__(f"share_code: {share_code!r} is already another share's")


class ClassRulesMissing(ConflictError):
    """Guides are classed by HQ's rules; none were ever put for the brand group."""

    code = "class_rules_missing"

    def __init__(self) -> None:
        super().__init__("rules: HQ has set no guide class rules; put them before classifying")


class ProgrammeMissing(ConflictError):
    """Guides are measured by the stages of HQ's programme; none was ever put for the group."""

    code = "programme_missing"

    def __init__(self) -> None:
        super().__init__("stages: HQ has set no programme; put its stages before reporting")


class ProgrammeNotStarted(ConflictError):
    """The period starts before the programme's first stage: no stage is in force."""

    code = "programme_not_started"

    def __init__(self, since: str, first: str) -> None:
        self.since, self.first = since, first
        super().__init__(
            f"since: {since} is before the programme's first stage (starts on {first}); "
            "no stage is in force"
        )

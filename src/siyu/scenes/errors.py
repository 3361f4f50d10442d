"""The QR scenes' refusals: each is a conflict (409) and applies nothing.

Each class keeps a stable `code`, the API problem's `code` member."""

from __future__ import annotations

from siyu.errors import ConflictError


class SceneExists(ConflictError):
    """The scene string is already a code of the group, pointing elsewhere."""

    code = "scene_exists"

    def __init__(self, scene: str) -> None:
        self.scene = scene
        super().__init__(f"scene: {scene!r} already names another code in this group")


class SceneLimitReached(ConflictError):
    """The platform's limit on codes of a kind (WeChat: 100,000 permanent) is used up."""

    code = "scene_limit_reached"

    def __init__(self, kind: str, cap: int) -> None:
        self.kind, self.cap = kind, cap
        super().__init__(f"kind: at most {cap:,} {kind} codes per brand group, all used")

"""A person's name and its parts, as the member profile keeps them for matching.

Chinese names are written family name first with no space (欧阳娜娜: 欧阳 + 娜娜); the
family name is one character except for a known list of compound surnames, which are
kept whole. Latin names are written given name first, so the last word is the family
name ("Mary Anne Smith": Smith + Mary Anne), unless a comma puts it first ("Smith, Mary").
A name these rules cannot split (a transliterated minority name with a middle dot) is
kept whole as the given name rather than split wrongly.
"""

from __future__ import annotations

import re

# Two-character Chinese surnames (复姓), simplified and traditional, the common ones: a
# name starting with one of these keeps it whole as the family name.
COMPOUND_SURNAMES = frozenset(
    [
        "欧阳",
        "司马",
        "诸葛",
        "上官",
        "东方",
        "皇甫",
        "尉迟",
        "公孙",
        "慕容",
        "长孙",
        "宇文",
        "司徒",
        "夏侯",
        "轩辕",
        "令狐",
        "钟离",
        "端木",
        "独孤",
        "南宫",
        "西门",
        "申屠",
        "太史",
        "澹台",
        "百里",
        "呼延",
        "万俟",
        "闻人",
        "赫连",
        "濮阳",
        "淳于",
        "单于",
        "太叔",
        "公冶",
        "宗政",
        "仲孙",
        "东郭",
        "拓跋",
        "第五",
        "公羊",
        "谷梁",
        "左丘",
        "梁丘",
        "司空",
        "司寇",
        "乐正",
        "亓官",
        "巫马",
        "漆雕",
        "歐陽",
        "司馬",
        "諸葛",
        "東方",
        "尉遲",
        "公孫",
        "長孫",
        "軒轅",
        "鍾離",
        "獨孤",
        "南宮",
        "西門",
        "澹臺",
        "萬俟",
        "聞人",
        "赫連",
        "單于",
        "東郭",
        "穀梁",
        "樂正",
    ]
)
_CJK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0003134f]")
_MIDDLE_DOTS = ("·", "•", "・", "‧")
_SPACES = re.compile(r"\s+")


def is_chinese(text: str) -> bool:
    """True when every letter of `text` is a Chinese character (spaces and dots aside)."""
    letters = [c for c in text if not c.isspace() and c not in _MIDDLE_DOTS]
    return bool(letters) and all(_CJK.match(c) for c in letters)


def split_name(name: str) -> tuple[str | None, str | None]:
    """(given name, family name) of a whole name; None for a part it does not have."""
    text = _SPACES.sub(" ", name).strip()
    if not text:
        return None, None
    if is_chinese(text):
        if any(dot in text for dot in _MIDDLE_DOTS):
            return text, None
        if " " in text:  # 李 小龙: whoever typed the space said where the surname ends
            family, given = text.split(" ", 1)
            return given.replace(" ", "") or None, family
        family = text[:2] if text[:2] in COMPOUND_SURNAMES else text[:1]
        return text[len(family) :] or None, family
    if "," in text:
        family, given = (part.strip() for part in text.split(",", 1))
        return given or None, family or None
    words = text.split(" ")
    if len(words) == 1:
        return text, None
    return " ".join(words[:-1]), words[-1]


def compose_name(given: str | None, family: str | None) -> str | None:
    """The whole name from its parts: family + given for Chinese names, "given family"
    otherwise; None when both are missing."""
    parts = [p for p in (given, family) if p]
    if not parts:
        return None
    if given and family and is_chinese(given) and is_chinese(family):
        return family + given
    return " ".join(parts)

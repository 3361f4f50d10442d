"""Names as they meet at a till: traditional or simplified, typed by pinyin, swapped.

A cashier types a name with a pinyin input method and may pick a homophone (章 for 张);
a customer from Hong Kong or Taiwan writes 張偉 where the mini-program has 张伟. Both are
the same person's name, so a name is compared as simplified characters (OpenCC t2s) and
as toneless pinyin (pypinyin). Latin names are lower-cased letters, their own "pinyin".
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

from opencc import OpenCC
from pypinyin import Style, lazy_pinyin

_T2S = OpenCC("t2s")
_HAN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
# what is not part of a name: spaces, dots (·), hyphens, apostrophes, digits, emoji
_NOT_NAME = re.compile(r"[^\w]|[\d_]")
_NOT_TEXT = re.compile(r"[^\w\s]|_")
_SPACES = re.compile(r"\s+")

# Two-character surnames, the common ones: 欧阳娜娜 is 欧阳 + 娜娜, not 欧 + 阳娜娜.
COMPOUND_SURNAMES = frozenset(
    "欧阳 司马 上官 诸葛 东方 皇甫 令狐 公孙 慕容 尉迟 长孙 宇文 司徒 夏侯 轩辕 端木 "  # noqa: SIM905
    "西门 南宫 独孤 万俟 闻人 澹台 公冶 申屠 太史 呼延 赫连 钟离 司空 百里 东郭 南门".split()
)
# Surnames read differently from the same character elsewhere (单 is shan as a surname,
# dan otherwise): the pinyin of a family name uses these, so 单 and 善 meet.
SURNAME_READINGS = {
    "单": "shan",
    "曾": "zeng",
    "解": "xie",
    "区": "ou",
    "仇": "qiu",
    "朴": "piao",
    "查": "zha",
    "盖": "ge",
    "乐": "yue",
    "覃": "qin",
    "缪": "miao",
    "翟": "zhai",
    "种": "chong",
    "秘": "bi",
    "员": "yun",
    "繁": "po",
    "召": "shao",
    "折": "she",
    "藏": "zang",
    "尉迟": "yuchi",
    "万俟": "moqi",
    "长孙": "zhangsun",
}


def has_han(text: str) -> bool:
    return _HAN.search(text) is not None


def clean_text(raw: str | None) -> str | None:
    """Simplified, full-width folded (NFKC), lower-case, punctuation dropped, single spaces."""
    if raw is None:
        return None
    text = _T2S.convert(unicodedata.normalize("NFKC", raw)).lower()
    text = _SPACES.sub(" ", _NOT_TEXT.sub(" ", text)).strip()
    return text or None


def clean_name(raw: str | None) -> str | None:
    """A name part as compared: simplified, lower-case, letters only (no spaces, dots,
    hyphens or digits), so 'Mary-Ann' meets 'maryann' and 張 meets 张."""
    if raw is None:
        return None
    text = _T2S.convert(unicodedata.normalize("NFKC", raw)).lower()
    text = _NOT_NAME.sub("", text)
    return text or None


def split_full_name(raw: str | None) -> tuple[str | None, str | None]:
    """(given, family) of a full name. Chinese names put the family name first (one
    character, or two for a compound surname); latin names put it last, or first when
    followed by a comma ('Smith, John')."""
    if raw is None:
        return None, None
    text = _T2S.convert(unicodedata.normalize("NFKC", raw)).strip()
    if has_han(text):
        compact = clean_name(text) or ""
        if len(compact) < 2:
            return None, compact or None
        cut = 2 if compact[:2] in COMPOUND_SURNAMES and len(compact) > 2 else 1
        return compact[cut:], compact[:cut]
    if "," in text:
        family, _, given = text.partition(",")
        return clean_name(given), clean_name(family)
    tokens = [t for t in (clean_name(part) for part in text.split()) if t]
    if not tokens:
        return None, None
    if len(tokens) == 1:
        return tokens[0], None
    return "".join(tokens[:-1]), tokens[-1]


@lru_cache(maxsize=65536)
def _char_pinyin(char: str) -> str:
    if not _HAN.match(char):
        return char
    syllables = lazy_pinyin(char, style=Style.NORMAL, errors="ignore")
    return syllables[0] if syllables else char


def pinyin(name: str | None, *, family: bool = False) -> str | None:
    """Toneless pinyin of a cleaned name part, syllables run together ('zhangwei'); each
    character read on its own, as an input method offers it. Latin letters stay as they
    are. A family name uses its surname reading (单 -> shan)."""
    if not name:
        return None
    if family:
        for surname in (name[:2], name[:1]):
            if surname in SURNAME_READINGS:
                rest = name[len(surname) :]
                return SURNAME_READINGS[surname] + "".join(_char_pinyin(c) for c in rest)
    return "".join(_char_pinyin(c) for c in name)

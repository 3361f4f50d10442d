"""A name and its parts: Chinese names family first without a space (compound surnames
kept whole), Latin names given first."""

from __future__ import annotations

import pytest

from siyu.identity.names import compose_name, split_name


@pytest.mark.parametrize(
    ("name", "family", "given"),
    [
        ("张三", "张", "三"),
        ("欧阳娜娜", "欧阳", "娜娜"),
        ("司马相如", "司马", "相如"),
        ("諸葛亮", "諸葛", "亮"),  # traditional characters
        ("上官婉儿", "上官", "婉儿"),
        ("王", "王", None),
        ("欧阳", "欧阳", None),  # a compound surname alone is a surname
        ("Mitchell Green", "Green", "Mitchell"),
        ("  mary   anne smith ", "smith", "mary anne"),
        ("Madonna", None, "Madonna"),
        ("Green, Mitchell", "Green", "Mitchell"),
        ("李 小龙", "李", "小龙"),
        ("阿沛·阿旺晋美", None, "阿沛·阿旺晋美"),  # a transliterated name: no rule to split
    ],
)
def test_a_name_is_split_into_family_and_given_name(
    name: str, family: str | None, given: str | None
) -> None:
    assert split_name(name) == (given, family)


@pytest.mark.parametrize(
    ("given", "family", "name"),
    [
        ("娜娜", "欧阳", "欧阳娜娜"),
        ("三", "张", "张三"),
        ("Mitchell", "Green", "Mitchell Green"),
        ("mitchell", None, "mitchell"),
        (None, "Green", "Green"),
        ("小龙", "Lee", "小龙 Lee"),  # mixed scripts: not a Chinese name, so given first
        (None, None, None),
    ],
)
def test_a_name_is_composed_from_its_parts(
    given: str | None, family: str | None, name: str | None
) -> None:
    assert compose_name(given, family) == name


def test_composing_and_splitting_agree_on_chinese_and_latin_names() -> None:
    for given, family in (("相如", "司马"), ("三", "张"), ("Anne", "Smith")):
        assert split_name(compose_name(given, family) or "") == (given, family)

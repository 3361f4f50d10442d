"""How one person's name gets written at different tills: the spellings OneID must see
through (traditional characters, a homophone picked by the input method, a surname with
an honorific, pinyin in either order) and the given/family parts some systems keep.

The tables are fixed here rather than computed with OpenCC or pypinyin at run time, so
the data never changes with a dictionary's version; tests/demo check them against both.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from siyu.demo import text, words
from siyu.demo.rand import I64, Bool

# Name forms of a member record (truth/members.parquet spells them out).
AS_REGISTERED, TRADITIONAL, HOMOPHONE, HONORIFIC, LATIN, LATIN_SWAPPED, MISSING = range(7)
NAME_FORMS = (
    "as_registered", "traditional", "homophone", "honorific", "latin", "latin_swapped", "missing",
)  # fmt: skip

# Simplified -> traditional (OpenCC s2t), minus the characters whose traditional form as a
# surname is the same (余, 于, 范) and a variant form (峰 -> 峯) no one types.
_TRADITIONAL = dict(
    zip(
        "张刘陈杨黄赵吴孙马罗郑谢许韩冯邓蒋叶苏吕卢钟谭陆韦贾邹闫龙贺顾龚万钱严欧阳"
        "静丽艳颖悦梦瑶洁岚诗晓伟强军杰涛鹏轩辉刚凯泽宁乐",
        "張劉陳楊黃趙吳孫馬羅鄭謝許韓馮鄧蔣葉蘇呂盧鍾譚陸韋賈鄒閆龍賀顧龔萬錢嚴歐陽"
        "靜麗豔穎悅夢瑤潔嵐詩曉偉強軍傑濤鵬軒輝剛凱澤寧樂",
        strict=True,
    )
)
# A character the input method offers first for the same pinyin (toneless): what a clerk
# picks when the customer only says the name aloud. Surnames too (张/章, 徐/许, 江/姜).
_HOMOPHONE = dict(
    zip(
        "伟静丽娟敏燕艳玲芳雪琳颖欣悦怡佳梦思雨晨萱涵琪瑶妍倩璐薇慧洁月岚菲诗晓婷强磊军洋勇"
        "杰涛明超斌鹏浩宇轩俊博文辉刚建峰鑫凯昊然志豪航睿泽毅子一可安嘉宁心逸天清"
        "张王李杨徐许吴江蒋姜余于钟付林",
        "玮婧莉鹃闵艳燕铃方薛林莹鑫月宜嘉孟斯语辰宣含琦遥研茜露微惠杰悦兰飞师小亭锵蕾君阳永"
        "洁韬铭朝彬朋昊羽宣骏波雯晖钢健锋欣楷浩冉智浩杭瑞则艺梓依珂桉佳凝欣艺田青"
        "章汪黎阳许徐伍姜江江俞余仲傅琳",
        strict=True,
    )
)
# Toneless pinyin as written in a latin-script name (吕 as on passports: Lyu; 曾 and 覃
# read as surnames).
_PINYIN_TEXT = """
王:wang 李:li 张:zhang 刘:liu 陈:chen 杨:yang 黄:huang 赵:zhao 吴:wu 周:zhou 徐:xu 孙:sun 马:ma
朱:zhu 胡:hu 郭:guo 何:he 林:lin 高:gao 罗:luo 郑:zheng 梁:liang 谢:xie 宋:song 唐:tang 许:xu
韩:han 冯:feng 邓:deng 曹:cao 彭:peng 曾:zeng 肖:xiao 田:tian 董:dong 潘:pan 袁:yuan 蔡:cai
蒋:jiang 余:yu 于:yu 杜:du 叶:ye 程:cheng 魏:wei 苏:su 吕:lyu 丁:ding 任:ren 卢:lu 姚:yao
沈:shen 钟:zhong 姜:jiang 崔:cui 谭:tan 陆:lu 范:fan 汪:wang 廖:liao 石:shi 金:jin 韦:wei
贾:jia 夏:xia 付:fu 方:fang 邹:zou 熊:xiong 白:bai 孟:meng 秦:qin 邱:qiu 侯:hou 江:jiang
尹:yin 薛:xue 闫:yan 段:duan 雷:lei 龙:long 黎:li 史:shi 陶:tao 贺:he 毛:mao 郝:hao 顾:gu
龚:gong 邵:shao 万:wan 覃:qin 武:wu 钱:qian 戴:dai 严:yan 欧阳:ouyang 司马:sima
上官:shangguan 婷:ting 静:jing 丽:li 娟:juan 敏:min 燕:yan 艳:yan 玲:ling 芳:fang 雪:xue
琳:lin 颖:ying 欣:xin 悦:yue 怡:yi 佳:jia 梦:meng 思:si 雨:yu 晨:chen 萱:xuan 涵:han 琪:qi
瑶:yao 妍:yan 倩:qian 璐:lu 薇:wei 慧:hui 洁:jie 月:yue 岚:lan 菲:fei 诗:shi 晓:xiao 伟:wei
强:qiang 磊:lei 军:jun 洋:yang 勇:yong 杰:jie 涛:tao 明:ming 超:chao 斌:bin 鹏:peng 浩:hao
宇:yu 轩:xuan 俊:jun 博:bo 文:wen 辉:hui 刚:gang 建:jian 峰:feng 鑫:xin 凯:kai 昊:hao 然:ran
志:zhi 豪:hao 航:hang 睿:rui 泽:ze 毅:yi 子:zi 一:yi 可:ke 安:an 嘉:jia 宁:ning 乐:le 心:xin
逸:yi 天:tian 清:qing
"""


def _pairs(table: str) -> dict[str, str]:
    return dict(item.split(":") for item in table.split())


_PINYIN = _pairs(_PINYIN_TEXT)
HONORIFICS = ("女士", "先生", "")  # by gender f, m, u: "Ms Wang" when only the surname is given


def traditional(name: str) -> str:
    """The name in traditional characters (unchanged where none differs)."""
    return "".join(_TRADITIONAL.get(c, c) for c in name)


def homophone(name: str) -> str:
    """The name with its first character that has a common homophone replaced."""
    for i, c in enumerate(name):
        if c in _HOMOPHONE:
            return name[:i] + _HOMOPHONE[c] + name[i + 1 :]
    return name


def pinyin(name: str, capitalised: bool = True) -> str:
    """Toneless pinyin of a surname or given name, as one word ("Zihan", "Ouyang")."""
    word = _PINYIN[name] if name in _PINYIN else "".join(_PINYIN[c] for c in name)
    return word.capitalize() if capitalised else word


@dataclass(frozen=True)
class Spellings:
    """Every spelling of every surname and given name in the pools, as Arrow dictionaries
    indexed like the pools (given: GIVEN_F + GIVEN_M + GIVEN_U, then "" for none)."""

    surname: pa.Array
    surname_trad: pa.Array
    surname_homo: pa.Array
    surname_latin: pa.Array
    given: pa.Array
    given_trad: pa.Array
    given_homo: pa.Array
    given_latin: pa.Array  # lower case: the second character's part of "Zihan"
    given_latin_cap: pa.Array
    surname_has_trad: Bool
    surname_has_homo: Bool
    given_has_trad: Bool
    given_has_homo: Bool
    honorifics: pa.Array


def spellings() -> Spellings:
    """The dictionaries for the generator's word pools."""
    surnames = list(words.SURNAMES)
    given = [*words.GIVEN_F, *words.GIVEN_M, *words.GIVEN_U, ""]

    def arr(values: list[str]) -> pa.Array:
        return pa.array(values, type=pa.string())

    def flags(values: list[str], convert: dict[str, str]) -> Bool:
        return np.array([any(c in convert for c in v) for v in values])

    # a given name's homophone replaces one character, so each character is its own entry
    return Spellings(
        surname=arr(surnames),
        surname_trad=arr([traditional(s) for s in surnames]),
        surname_homo=arr([homophone(s) for s in surnames]),
        surname_latin=arr([pinyin(s) for s in surnames]),
        given=arr(given),
        given_trad=arr([traditional(g) for g in given]),
        given_homo=arr([homophone(g) for g in given]),
        given_latin=arr([pinyin(g, capitalised=False) if g else "" for g in given]),
        given_latin_cap=arr([pinyin(g) if g else "" for g in given]),
        surname_has_trad=flags(surnames, _TRADITIONAL),
        surname_has_homo=flags(surnames, _HOMOPHONE),
        given_has_trad=flags(given, _TRADITIONAL),
        given_has_homo=flags(given, _HOMOPHONE),
        honorifics=arr(list(HONORIFICS)),
    )


@dataclass(frozen=True)
class NameColumns:
    """A member record's name as written: the whole name and, split, its parts."""

    name: pa.Array
    given_name: pa.Array
    family_name: pa.Array


def _join(*parts: pa.Array, sep: str = "") -> pa.Array:
    return pc.binary_join_element_wise(*parts, sep)


def render_names(
    sp: Spellings,
    form: I64,
    homo_at: I64,
    surname: I64,
    given1: I64,
    given2: I64,
    gender: I64,
    parts: Bool,
) -> NameColumns:
    """Names of member records in their `form` (one of NAME_FORMS per row).

    `homo_at` says which character a HOMOPHONE form replaces (0 surname, 1 and 2 the given
    name's); `given2` is the pools' "" entry for a one-character given name; `parts` says
    whether the record keeps given_name and family_name apart.
    """
    g2 = given2
    is_trad, is_homo = form == TRADITIONAL, form == HOMOPHONE
    s_chn = pc.choose(
        pa.array(np.where(is_trad, 1, np.where(is_homo & (homo_at == 0), 2, 0))),
        text.take(sp.surname, surname),
        text.take(sp.surname_trad, surname),
        text.take(sp.surname_homo, surname),
    )

    def given_part(idx: I64, at: int) -> pa.Array:
        return pc.choose(
            pa.array(np.where(is_trad, 1, np.where(is_homo & (homo_at == at), 2, 0))),
            text.take(sp.given, idx),
            text.take(sp.given_trad, idx),
            text.take(sp.given_homo, idx),
        )

    g_chn = _join(given_part(given1, 1), given_part(g2, 2))
    given_latin = _join(text.take(sp.given_latin_cap, given1), text.take(sp.given_latin, g2))
    surname_latin = text.take(sp.surname_latin, surname)
    honorific = _join(text.take(sp.surname, surname), text.take(sp.honorifics, gender))

    latin, swapped = form == LATIN, form == LATIN_SWAPPED
    pick = pa.array(np.where(form == HONORIFIC, 1, np.where(latin, 2, np.where(swapped, 3, 0))))
    name = pc.choose(
        pick,
        _join(s_chn, g_chn),
        honorific,
        _join(given_latin, surname_latin, sep=" "),
        _join(surname_latin, given_latin, sep=" "),
    )
    # a swapped latin record holds the family name in the given-name field, and back
    given = pc.choose(pick, g_chn, pa.nulls(len(form), pa.string()), given_latin, surname_latin)
    family = pc.choose(pick, s_chn, text.take(sp.surname, surname), surname_latin, given_latin)
    missing = form == MISSING
    no_parts = missing | ~parts
    return NameColumns(
        name=_nulls(name, missing),
        given_name=_nulls(given, no_parts),
        family_name=_nulls(family, no_parts),
    )


def _nulls(values: pa.Array, mask: Bool) -> pa.Array:
    if not mask.any():
        return values
    return pc.if_else(pa.array(mask), pa.scalar(None, pa.string()), values)


def applicable(sp: Spellings, surname: I64, given1: I64, given2: I64) -> tuple[Bool, Bool]:
    """Whether a traditional and a homophone spelling would differ from the name."""
    trad = sp.surname_has_trad[surname] | sp.given_has_trad[given1] | sp.given_has_trad[given2]
    homo = sp.surname_has_homo[surname] | sp.given_has_homo[given1] | sp.given_has_homo[given2]
    return trad, homo


def homophone_position(sp: Spellings, u: np.ndarray, surname: I64, given1: I64, given2: I64) -> I64:
    """Which character (0 surname, 1, 2 given) a homophone replaces: uniformly among those
    that have one (0 if none)."""
    has = np.stack(
        [sp.surname_has_homo[surname], sp.given_has_homo[given1], sp.given_has_homo[given2]],
        axis=1,
    )
    count = has.sum(axis=1)
    j = np.minimum((u * np.maximum(count, 1)).astype(np.int64), np.maximum(count - 1, 0))
    rank = np.cumsum(has, axis=1) - 1  # rank of each candidate among the row's candidates
    hit = has & (rank == j[:, None])
    return np.where(count > 0, np.argmax(hit, axis=1), 0).astype(np.int64)

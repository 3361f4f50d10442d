"""Contact details on member records: e-mails, China-style addresses with postcodes, and
the city as each till spells it.

An e-mail is its person's alone (the number in it is a keyed bijection of the person), so
it is as strong as a phone; an address is its household's, shared by everyone living
there, so it is evidence, never proof, that two records are one person.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from siyu.demo import text, words
from siyu.demo.names import Spellings
from siyu.demo.rand import I64, Bool, Rng, permute_below

# province of each city in words.CITIES ("" for a municipality, which is its own province)
PROVINCES = {"杭州": "浙江省", "南京": "江苏省", "广州": "广东省", "深圳": "广东省",
             "成都": "四川省", "武汉": "湖北省"}  # fmt: skip
CITY_LATIN = {"上海": "Shanghai", "杭州": "Hangzhou", "南京": "Nanjing", "北京": "Beijing",
              "广州": "Guangzhou", "深圳": "Shenzhen", "成都": "Chengdu",
              "武汉": "Wuhan"}  # fmt: skip
# postcode of each district, in the order of words.CITIES
POSTCODES = {
    "上海": ("200030", "200040", "200120", "201100", "200050", "200090"),
    "杭州": ("310012", "310051", "310011", "311100"),
    "南京": ("210009", "210018", "210019", "211100"),
    "北京": ("100020", "100080", "100010", "100071", "101100"),
    "广州": ("510630", "510030", "510220", "511400"),
    "深圳": ("518052", "518048", "518001", "518101", "518109"),
    "成都": ("610021", "610041", "610093", "610051"),
    "武汉": ("430015", "430061", "430070", "430050"),
}
STREETS = (
    "人民路", "解放路", "中山路", "建设路", "和平路", "文化路", "新华路", "长江路", "学府路",
    "滨江大道", "青年路", "胜利路", "友谊路", "光明路", "朝阳路", "幸福路", "南京路", "北京路",
    "东风路", "花园路",
)  # fmt: skip
# (domain, weight) of e-mails written as pinyin + number; the others are QQ numbers
MAIL_DOMAINS = (("163.com", 0.3), ("126.com", 0.15), ("sina.com", 0.1), ("foxmail.com", 0.1),
                ("gmail.com", 0.1), ("outlook.com", 0.1), ("hotmail.com", 0.1),
                ("yeah.net", 0.05))  # fmt: skip
QQ_MAIL_SHARE = 0.45  # QQ mail (number@qq.com) is China's most common personal address
QQ_SPACE = 10**9  # QQ numbers of 5 to 10 digits
ROOM_SHARE = 0.7  # addresses down to the flat (building and room); the rest stop at the number
# City spellings of a member record: as registered, with 市, in pinyin.
CITY_PLAIN, CITY_SHI, CITY_LATIN_FORM = range(3)
CITY_FORMS = ("as_registered", "with_shi", "latin")

_CITY_NAMES = [c[0] for c in words.CITIES]
_DISTRICT_COUNT = np.array([len(c[3]) for c in words.CITIES], dtype=np.int64)
_DISTRICT_OFF = np.concatenate([[0], np.cumsum(_DISTRICT_COUNT)[:-1]]).astype(np.int64)
_DISTRICTS = pa.array([f"{d}区" for c in words.CITIES for d in c[3]], type=pa.string())
_POSTCODES = pa.array([p for c in _CITY_NAMES for p in POSTCODES[c]], type=pa.string())
_CITY_PREFIX = pa.array(
    [f"{PROVINCES.get(c, '')}{c}市" for c in _CITY_NAMES], type=pa.string()
)  # "浙江省杭州市", "上海市"
_CITY_SPELLINGS = pa.array(
    [*_CITY_NAMES, *(f"{c}市" for c in _CITY_NAMES), *(CITY_LATIN[c] for c in _CITY_NAMES)],
    type=pa.string(),
)
_STREETS = pa.array(STREETS, type=pa.string())
_DOMAINS = pa.array([d for d, _w in MAIL_DOMAINS], type=pa.string())
_DOMAIN_CUM = np.cumsum([w for _d, w in MAIL_DOMAINS])


def district(rng: Rng, household: I64, city: I64) -> I64:
    """Index into the flat district list of the household's district in its city."""
    return _DISTRICT_OFF[city] + rng.below("district", _DISTRICT_COUNT[city], household)


def city_spelling(city: I64, form: I64) -> pa.Array:
    """The city as a till wrote it: 上海, 上海市 or Shanghai."""
    return text.take(_CITY_SPELLINGS, form * len(_CITY_NAMES) + city)


def _number(values: I64) -> pa.Array:
    return pc.cast(pa.array(values, type=pa.int64()), pa.string())


def addresses(
    rng: Rng, household: I64, city: I64, dist: I64, short: Bool
) -> tuple[pa.Array, pa.Array]:
    """(address, postcode) of each row's household: 省/市 + 区 + street + 号 (+ 栋 and 室);
    a `short` row leaves out the province and city, as a local till does."""
    street = rng.below("street", len(STREETS), household)
    number = 1 + rng.below("street_no", 899, household)
    building = 1 + rng.below("building", 30, household)
    room = (1 + rng.below("floor", 28, household)) * 100 + 1 + rng.below("flat", 6, household)
    flat = rng.flag("room", ROOM_SHARE, household)
    n = len(household)
    empty = pa.array([""] * n, type=pa.string())
    tail = pc.if_else(
        pa.array(flat),
        pc.binary_join_element_wise(_number(building), "栋", _number(room), "室", ""),
        empty,
    )
    prefix = pc.if_else(pa.array(short), empty, text.take(_CITY_PREFIX, city))
    address = pc.binary_join_element_wise(
        prefix,
        text.take(_DISTRICTS, dist),
        text.take(_STREETS, street),
        _number(number),
        pa.array(["号"] * n, type=pa.string()),
        tail,
        "",
    )
    return address, text.take(_POSTCODES, dist)


def emails(
    rng: Rng, sp: Spellings, pid: I64, surname: I64, given1: I64, given2: I64, members: int
) -> pa.Array:
    """Each person's own e-mail: a QQ number at qq.com, or pinyin + a number at a common
    domain. The number is a keyed bijection of the person, so no two persons share one."""
    n = len(pid)
    if not n:
        return pa.array([], type=pa.string())
    qq = rng.flag("qq_mail", QQ_MAIL_SHARE, pid)
    qq_no = 10_000 + permute_below(pid, QQ_SPACE - 10_000, rng.base("qq_no")).astype(np.int64)
    tag = permute_below(pid, max(10 * members, 1000), rng.base("mail_no")).astype(np.int64)
    domain = rng.choice("mail_domain", _DOMAIN_CUM, pid)
    local = pc.binary_join_element_wise(
        text.take(sp.surname_latin, surname),
        text.take(sp.given_latin, given1),
        text.take(sp.given_latin, given2),
        _number(tag),
        "",
    )
    named = pc.binary_join_element_wise(pc.utf8_lower(local), text.take(_DOMAINS, domain), "@")
    numbered = pc.binary_join_element_wise(_number(qq_no), pa.array(["qq.com"] * n), "@")
    return pc.if_else(pa.array(qq), numbered, named)

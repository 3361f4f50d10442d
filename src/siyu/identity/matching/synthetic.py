"""Synthetic member records with duplicates made the way people make them, and the truth.

A brand's members in China: family names drawn roughly by their frequency (王 李 张 ... and a
few compound ones), one- or two-character given names, mainland mobiles, birth dates,
cities with their postcodes and street addresses, some e-mails, nicknames and devices.
A person has one to four records; each copy after the first is perturbed at rates a till
and a mini-program plausibly produce:

- phone: a digit mistyped (6%), two neighbours swapped (3%), missing (10%)
- name: a homophone typed by pinyin (6%), written in traditional characters (4%), given
  and family swapped (2%), only the full name given (10%)
- birth date: a digit mistyped (3%), day and month swapped (2%), missing (15%)
- address: missing (25%), a character dropped (5%), moved house (8%: another district,
  postcode and street); e-mail: a character dropped (5%)
- nickname: changed or dropped (30%); device: another one or none (50%)

Households make the near misses: 15% of people live with the previous one (same family
name, address and postcode, half of them on the same device), with their own given
name, birth date and phone.

Deterministic for a seed. Used by the matching tests and bench/bench_matching.py.
"""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import pyarrow as pa
from opencc import OpenCC
from pypinyin import Style, lazy_pinyin

# The hundred commonest surnames, roughly by frequency, and four compound ones.
SURNAMES = [
    *"王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程",
    *"苏魏吕丁任沈姚卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯龙史陶黎贺顾毛郝",
    *"龚邵万钱严覃武戴莫孔向汤",
    *("欧阳", "司马", "诸葛", "上官"),
]
GIVEN_CHARS = list(
    "伟芳娜秀英敏静丽强磊军洋勇艳杰娟涛明超兰霞平刚桂玉萍红华建国文辉鹏飞宇浩然子轩梓涵一诺"
    "欣怡雨晨佳琪思远嘉俊博文慧婷雪梅海燕春晓东亮志斌波宁小龙凤琳颖晶莉秋菊健康永福德新利"
)
CITIES = [  # city, postcode prefix (3 digits), weight
    ("上海", "200", 12),
    ("北京", "100", 10),
    ("广州", "510", 8),
    ("深圳", "518", 8),
    ("杭州", "310", 6),
    ("成都", "610", 6),
    ("武汉", "430", 5),
    ("南京", "210", 5),
    ("重庆", "400", 5),
    ("西安", "710", 4),
    ("苏州", "215", 4),
    ("天津", "300", 4),
    ("长沙", "410", 3),
    ("郑州", "450", 3),
    ("青岛", "266", 3),
    ("厦门", "361", 2),
    ("宁波", "315", 2),
    ("合肥", "230", 2),
    ("昆明", "650", 2),
    ("福州", "350", 2),
]
ROADS = list("中山人民解放建设和平胜利新华光明长江黄河东风文化朝阳")
MOBILE_PREFIXES = [
    "130",
    "131",
    "132",
    "133",
    "135",
    "136",
    "137",
    "138",
    "139",
    "150",
    "151",
    "152",
    "155",
    "156",
    "158",
    "159",
    "166",
    "176",
    "177",
    "180",
    "181",
    "186",
    "187",
    "188",
    "189",
    "199",
]
DOMAINS = ["qq.com", "163.com", "126.com", "gmail.com", "sina.com"]
NICKNAMES = ["小", "阿", "大", "老"]

_S2T = OpenCC("s2t")


def _homophones() -> dict[str, list[str]]:
    """Characters of the lists grouped by toneless pinyin: what an input method offers."""
    by_sound: dict[str, list[str]] = {}
    for char in set(GIVEN_CHARS) | {s for s in SURNAMES if len(s) == 1}:
        by_sound.setdefault(lazy_pinyin(char, style=Style.NORMAL)[0], []).append(char)
    return {c: [o for o in group if o != c] for group in by_sound.values() for c in group}


HOMOPHONES = _homophones()


def _typo_digit(rng: np.random.Generator, digits: str, start: int) -> str:
    i = int(rng.integers(start, len(digits)))
    wrong = str((int(digits[i]) + int(rng.integers(1, 10))) % 10)
    return digits[:i] + wrong + digits[i + 1 :]


def _swap_neighbours(rng: np.random.Generator, text: str, start: int) -> str:
    i = int(rng.integers(start, len(text) - 1))
    return text[:i] + text[i + 1] + text[i] + text[i + 2 :]


def _drop_char(rng: np.random.Generator, text: str) -> str:
    i = int(rng.integers(0, len(text)))
    return text[:i] + text[i + 1 :]


def _homophone(rng: np.random.Generator, name: str) -> str:
    positions = [i for i, c in enumerate(name) if HOMOPHONES.get(c)]
    if not positions:
        return name
    i = positions[int(rng.integers(0, len(positions)))]
    options = HOMOPHONES[name[i]]
    return name[:i] + options[int(rng.integers(0, len(options)))] + name[i + 1 :]


def people(records: int, seed: int = 15) -> tuple[pa.Table, np.ndarray]:
    """`records` RAW_COLUMNS rows (record_id 1..n, shuffled) and each one's true person."""
    rng = np.random.default_rng(seed)
    surname_weights = 1.0 / np.arange(1, len(SURNAMES) + 1) ** 0.9
    surname_weights /= surname_weights.sum()
    city_weights = np.array([w for _, _, w in CITIES], dtype=float)
    city_weights /= city_weights.sum()
    rows: dict[str, list[object]] = {
        k: []
        for k in (  # noqa: SIM905
            "given_name family_name name birth_date city postcode address email phone "
            "nickname device_id"
        ).split()
    }
    truth: list[int] = []
    person = 0
    epoch = date(1955, 1, 1)
    household: tuple[str, str, str, str, str | None] | None = None
    while len(truth) < records:
        person += 1
        given = "".join(
            GIVEN_CHARS[i] for i in rng.integers(0, len(GIVEN_CHARS), rng.integers(1, 3))
        )
        born = epoch + timedelta(days=int(rng.integers(0, 51 * 365)))
        phone = _phone(rng)
        if household is not None and rng.random() < 0.15:
            family, city, postcode, address, device = household
            if rng.random() < 0.5:
                device = _device(rng)
        else:
            family = SURNAMES[rng.choice(len(SURNAMES), p=surname_weights)]
            city, postcode, address = _home(rng, city_weights)
            device = _device(rng)
        household = (family, city, postcode, address, device)
        letters = "".join(lazy_pinyin(family + given))
        email = (
            f"{letters}{int(rng.integers(1, 999))}@{DOMAINS[int(rng.integers(0, len(DOMAINS)))]}"
            if rng.random() < 0.4
            else None
        )
        nickname = NICKNAMES[int(rng.integers(0, 4))] + given[-1] if rng.random() < 0.5 else None
        copies = 1 + int(rng.choice(4, p=[0.7, 0.2, 0.07, 0.03]))
        for copy in range(copies):
            if len(truth) >= records:
                break
            g, f, only_full = given, family, False
            p: str | None = phone
            b: date | None = born
            e, n, d = email, nickname, device
            c, pc = city, postcode
            a: str | None = address
            if copy:
                draw = rng.random(12)
                if draw[0] < 0.06:
                    p = _typo_digit(rng, phone, 3)
                elif draw[0] < 0.09:
                    p = _swap_neighbours(rng, phone, 3)
                elif draw[0] < 0.19:
                    p = None
                if draw[1] < 0.06:
                    g = _homophone(rng, g)
                elif draw[1] < 0.10:
                    g, f = _S2T.convert(g), _S2T.convert(f)
                if draw[2] < 0.02:
                    g, f = f, g
                if draw[3] < 0.03:
                    b = _date_typo(rng, born)
                elif draw[3] < 0.05 and born.day <= 12:
                    b = date(born.year, born.day, born.month)
                elif draw[3] < 0.20:
                    b = None
                if draw[4] < 0.08:
                    c, pc, a = _home(rng, city_weights)
                elif draw[4] < 0.33:
                    a = None
                elif draw[4] < 0.38:
                    a = _drop_char(rng, address)
                if e is not None and draw[5] < 0.05:
                    e = _drop_char(rng, e)
                if draw[6] < 0.10:
                    only_full = True
                if draw[7] < 0.30:
                    n = None if draw[8] < 0.5 else NICKNAMES[int(rng.integers(0, 4))] + given[0]
                if draw[9] < 0.50:
                    d = _device(rng)
            rows["given_name"].append(None if only_full else g)
            rows["family_name"].append(None if only_full else f)
            rows["name"].append(f + g if only_full else None)
            rows["birth_date"].append(b)
            rows["city"].append(c)
            rows["postcode"].append(pc)
            rows["address"].append(a)
            rows["email"].append(e)
            rows["phone"].append(p)
            rows["nickname"].append(n)
            rows["device_id"].append(d)
            truth.append(person)
    order = rng.permutation(records)
    table = pa.table(
        {
            "record_id": pa.array(np.arange(1, records + 1, dtype=np.int64)),
            **{
                k: pa.array(
                    [v[i] for i in order], pa.date32() if k == "birth_date" else pa.string()
                )
                for k, v in rows.items()
            },
        }
    )
    return table, np.asarray(truth)[order]


def _phone(rng: np.random.Generator) -> str:
    prefix = MOBILE_PREFIXES[int(rng.integers(0, len(MOBILE_PREFIXES)))]
    return "+86" + prefix + "".join(str(d) for d in rng.integers(0, 10, 8))


def _device(rng: np.random.Generator) -> str | None:
    return f"{int(rng.integers(0, 2**62)):016x}" if rng.random() < 0.5 else None


def _home(rng: np.random.Generator, city_weights: np.ndarray) -> tuple[str, str, str]:
    """(city, postcode, street address): a district of a city, a road, a door."""
    city, prefix, _ = CITIES[rng.choice(len(CITIES), p=city_weights)]
    district = int(rng.integers(0, 30))
    road = "".join(ROADS[i] for i in rng.integers(0, len(ROADS), 2))
    door = f"{int(rng.integers(1, 999))}号{int(rng.integers(1, 30))}室"
    return city, f"{prefix}{district:03d}", f"{city}{district}区{road}路{door}"


def _date_typo(rng: np.random.Generator, born: date) -> date:
    """A digit of YYYYMMDD mistyped, kept only if it is still a date."""
    digits = born.strftime("%Y%m%d")
    for _ in range(5):
        typed = _typo_digit(rng, digits, 2)
        try:
            return date(int(typed[:4]), int(typed[4:6]), int(typed[6:]))
        except ValueError:
            continue
    return born

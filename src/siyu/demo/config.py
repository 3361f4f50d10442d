"""What the synthetic brand looks like: sizes, seed, churn curve and channel rates.

Defaults describe a three-brand group (fruit, bakery, tea) whose members churn like
Pagoda's "four purchases" rule: most churn after the first order, few after the fourth.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from datetime import date
from typing import Any

MAX_ORDERS_PER_PERSON = 256  # order ids hold the order number in 8 bits (+1 for cancelled)
MAX_MEMBERS = 100_000_000  # phone space holds 7e8 persons; ids leave room to 2**31
# the demo experiment's true effect (`demo/effect.py`): the chance that a treated member
# who would not have bought in the window comes back
DEFAULT_UPLIFT = 0.10
CARD_SERIAL_DIGITS = 9  # card numbers: "8" + a 9-digit serial, the same format in every brand

# Why these channel rates. Targets: a perfect resolver on strong identifiers reaches
# pairwise F1 >= 0.97 and finds clusters within ~3% of true persons. A person splits only
# when one of their accounts has no strong link to the rest, and that counts only if
# they have another channel. WeChat links through a verified phone (ordering in the
# mini-program requires one; 0.94 of browsers authorise too) or a bound card (0.6);
# marketplace accounts through the phone hash. Unlinked marketplace accounts (Tmall
# 0.3 x 0.02, JD 0.15 x 0.03, Douyin 0.15 x 0.04) fragment ~1.4% of persons, WeChat
# without phone or card ~0.5%, typo'd cards without a binding ~0.5%: ~3.3% split in all
# (the lead's 0.8-0.9 link rates would split ~7% and leave F1 at ~0.97). Household phones
# on cards (0.03 of cards) merge ~1.4% of clusters. Measured on 20k persons, seed 11:
# 1.9% more clusters than persons, pairwise F1 0.98 (asserted in tests/demo).
#
# Adversarial identity data (issue #15): the traps a real member base holds, each at a
# rate with its reason beside the field below (README "The demo's traps" sums them up).
# Mix of a member record's other spelling of the person's name: traditional characters,
# a homophone from the input method, surname + honorific (王女士), pinyin. Tills in
# Guangdong and for HK/TW customers write traditional; homophones come from names said
# aloud; "Ms Wang" is how a busy till records a name; pinyin comes from overseas and
# English-speaking systems.
NAME_VARIANT_MIX = (("traditional", 0.3), ("homophone", 0.3), ("honorific", 0.25),
                    ("latin", 0.15))  # fmt: skip


@dataclass(frozen=True)
class GeneratorConfig:
    """Knobs of the generator; every field has a sane default and is validated."""

    members: int = 20_000  # number of true persons
    seed: int = 11
    start: date = date(2024, 1, 1)  # first local day of the order window
    days: int = 730
    knee: int = 4  # churn falls sharply after the knee-th order
    churn_before: tuple[float, float] = (0.80, 0.50)  # after order 1 .. knee-1, linear
    churn_after: float = 0.15  # after order k >= knee
    mean_gap_days: float = 35.0  # mean gap between consecutive orders of a continuing buyer
    gap_shape: int = 2  # gamma shape of the gaps (1 = exponential)
    gap_spread: float = 0.25  # log-normal sigma of a person's own buying rate
    growth: float = 1.0  # first orders per day at the end are (1 + growth) x the start
    buyer_rate: float = 0.92  # persons with at least one order (others only register)
    phone_change_rate: float = 0.03
    shared_phone_rate: float = 0.03  # of cards of people living with others: a partner's phone
    # A card's only phone typed wrong at the till, the member never coming back to
    # register again (found by card later). With typo_duplicate_rate below, ~3% of till
    # registrations carry a mistyped phone: hand-keyed 11-digit numbers go wrong in 1-3%
    # of entries (the data-entry literature's ~1% per field, more at a queueing till).
    phone_typo_rate: float = 0.01
    # A second registration with a mistyped phone: the clerk keys the phone wrong when
    # looking the member up, finds no one and enrols them again (a new card of the same
    # brand; same person, name and birth date, maybe spelled another way).
    typo_duplicate_rate: float = 0.02
    # Of mistyped phones, the share with two adjacent digits swapped (the rest: one digit
    # wrong). Verhoeff (1969) found ~10-20% of manual digit errors to be adjacent
    # transpositions and 60-95% single substitutions.
    typo_transposition_share: float = 0.2
    # A second card of the same brand with the right phone: the member forgot the card at
    # another store and was enrolled again. Retail loyalty bases hold a few percent of such
    # duplicates before any clean-up.
    duplicate_registration_rate: float = 0.02
    # Every brand numbers its cards from its own sequence in the same 10-digit format:
    # serials are drawn from a range of card_range x persons numbers, so about one card in
    # five has the number of another brand's card (another person's). An integer from 2
    # (nearly every number reused) to 10**9 / members (hardly any).
    card_range: int = 3
    # Member records that spell the name another way (NAME_VARIANT_MIX): different tills,
    # clerks and systems; on a duplicate registration the name is keyed again by another
    # clerk from what the customer says, hence the much higher rate there.
    name_variant_rate: float = 0.04
    duplicate_name_variant_rate: float = 0.35
    latin_swap_share: float = 0.5  # pinyin names with the given/family parts swapped
    name_parts_rate: float = 0.5  # records whose source keeps given and family name apart
    # Birth dates: 02-29 at ~3x its natural 1/1461 so that small test sets hold some;
    # 12-31 and 01-01 over-represented as in real registers (unknown days recorded as the
    # first of the year); on records, the year given alone (YYYY-01-01), day and month
    # swapped (DD/MM vs MM/DD keying), or no birth date asked for.
    leap_day_birth_rate: float = 0.002
    year_edge_birth_rate: float = 0.01
    birth_placeholder_rate: float = 0.01
    birth_swap_rate: float = 0.01
    birth_missing_rate: float = 0.1
    # The city spelled 上海 / 上海市 / Shanghai: per till system, and again by the second clerk.
    city_variant_rate: float = 0.05
    duplicate_city_variant_rate: float = 0.3
    # E-mails: ~35% of persons give one (QQ mail above all), on 85% of their records:
    # ~30% of member records carry one.
    email_rate: float = 0.35
    email_on_record_rate: float = 0.85
    # Addresses (China style, with a 6-digit postcode) of households that had something
    # delivered or filled a profile: shared by the household, so never proof of a person.
    address_rate: float = 0.3
    address_on_record_rate: float = 0.8
    address_short_rate: float = 0.3  # district + street only, no province or city
    postcode_rate: float = 0.7  # of records with an address
    card_rate: float = 0.70  # POS member card at one brand of the group
    second_card_rate: float = 0.30  # of card holders buying two brands: a second card
    miniprogram_rate: float = 0.55
    verified_phone_rate: float = 0.94  # mini-program users who authorise their phone (buyers: all)
    card_binding_rate: float = 0.60  # card holders on the mini-program who bind the card
    wecom_rate: float = 0.35  # of mini-program users
    official_account_rate: float = 0.30  # of mini-program users
    tmall_rate: float = 0.30
    tmall_linked_rate: float = 0.98
    jd_rate: float = 0.15
    jd_linked_rate: float = 0.97
    douyin_rate: float = 0.15
    douyin_linked_rate: float = 0.96
    device_rate: float = 0.50  # mini-program users whose device id is observed
    # Of those in a household: also use a partner's device (a family's tablet or the
    # parent's phone for the kids): one device_id on two persons, a weak identifier that
    # must never merge them.
    shared_device_rate: float = 0.15
    nickname_rate: float = 0.40  # mini-program / Douyin accounts showing a nickname
    nickname_pool: int = 120  # small on purpose: different persons share nicknames
    pos_phone_order_rate: float = 0.15  # POS orders looked up by phone instead of card
    # Non-members at the till: WeChat users without a card buy in store too (their till
    # weight against a card holder's), paying by WeChat Pay, so the till sees only their
    # payer openid; and some card holders bought once that way before joining (the card
    # is issued just after that first till order). Together about 30% of till orders are
    # by non-members, the base of the non-member enrollment KPI.
    non_member_till_weight: float = 1.6
    join_after_first_till_rate: float = 0.25
    coupon_rate: float = 0.25
    refund_rate: float = 0.03
    cancel_rate: float = 0.02  # extra unpaid (cancelled) order before an online order
    chunk_persons: int = 100_000  # bounded memory: persons generated and written per chunk

    def __post_init__(self) -> None:
        _check(self.members, "members", 1 <= self.members <= MAX_MEMBERS, f"1..{MAX_MEMBERS}")
        _check(self.seed, "seed", 0 <= self.seed < 2**63, "an integer >= 0")
        _check(self.start, "start", 2015 <= self.start.year <= 2037, "year in 2015..2037")
        _check(self.days, "days", 28 <= self.days <= 1100, "28..1100 days")
        _check(self.knee, "knee", 2 <= self.knee <= 50, "2..50")
        _check(self.churn_before, "churn_before", len(self.churn_before) == 2, "two values")
        for i, c in enumerate(self.churn_before):
            _check(c, f"churn_before[{i}]", 0.0 <= c <= 1.0, "a probability in [0, 1]")
        _check(self.mean_gap_days, "mean_gap_days", 0.5 <= self.mean_gap_days <= 365, "0.5..365")
        _check(self.gap_shape, "gap_shape", 1 <= self.gap_shape <= 8, "an integer 1..8")
        _check(self.gap_spread, "gap_spread", 0.0 <= self.gap_spread <= 1.0, "0..1")
        _check(self.growth, "growth", 0.0 <= self.growth <= 20.0, "0..20")
        _check(self.nickname_pool, "nickname_pool", 1 <= self.nickname_pool <= 400, "1..400")
        _check(self.chunk_persons, "chunk_persons", self.chunk_persons >= 1, ">= 1")
        w = self.non_member_till_weight
        _check(w, "non_member_till_weight", 0.0 <= w <= 10.0, "0..10")
        skip = {"seed", "members", "days", "knee", "churn_before", "mean_gap_days", "gap_shape"}
        skip |= {"gap_spread", "growth", "nickname_pool", "chunk_persons", "start"}
        skip |= {"non_member_till_weight", "card_range"}
        room = 10**CARD_SERIAL_DIGITS // max(self.members, 1)
        _check(self.card_range, "card_range", 2 <= self.card_range <= room, f"2..{room}")
        for f in fields(self):
            if f.name not in skip:
                v = getattr(self, f.name)
                _check(v, f.name, 0.0 <= v <= 1.0, "a probability in [0, 1]")

    def churn(self, k: int) -> float:
        """Probability that a person stops after their k-th order (k >= 1)."""
        if k >= self.knee:
            return self.churn_after
        c0, c1 = self.churn_before
        if self.knee == 2:
            return c0
        return c0 + (c1 - c0) * (k - 1) / (self.knee - 2)

    def churn_curve(self, max_k: int = MAX_ORDERS_PER_PERSON) -> list[float]:
        """Churn after orders 1..max_k."""
        return [self.churn(k) for k in range(1, max_k + 1)]

    def to_json(self) -> dict[str, Any]:
        """The whole configuration as JSON-ready values (dates as ISO strings)."""
        out = asdict(self)
        out["start"] = self.start.isoformat()
        out["churn_before"] = list(self.churn_before)
        return out


def _check(value: object, name: str, ok: bool, rule: str) -> None:
    if not ok:
        raise ValueError(f"GeneratorConfig.{name}: must be {rule}, got {value!r}")

"""`siyu coupons`: templates put (a bad one refused naming the field, nothing stored) and
listed; issued to members, to a segment and from a file, once per key; liability that
matches the coupons' states; expiry; the nightly run. On a real SQLite store, in process."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text
from tests.brandfiles import write, write_reference
from typer.testing import CliRunner, Result

from siyu.cli import app, common
from siyu.cli.common import yuan
from siyu.cli.coupons import member_ids_in
from siyu.coupons.redeem import Redemption, redeem
from siyu.coupons.templates import Basket, BasketLine
from siyu.errors import ValidationError
from siyu.store.engine import make_engine

GROUP = "acme"
WELCOME = {
    "code": "welcome10",
    "name_zh": "新人立减 10 元",
    "name_en": "Welcome 10 off",
    "kind": "fixed",
    "off_fen": 1000,
    "min_paid_fen": 5000,
    "validity": {"days_from_issue": 30},
    "face_value_fen": 1000,
    "cost_fen": 800,
    "limits": {"per_member": 1, "budget_fen": 500000},
}
SPRING = {
    "code": "spring",
    "name_zh": "春季运费券",
    "name_en": "Spring shipping",
    "kind": "shipping",
    "cap_fen": 1500,
    "validity": {"starts_at": "2024-03-01T00:00:00", "ends_at": "2098-06-01T00:00:00"},
    "face_value_fen": 1500,
    "cost_fen": 1500,
}


class Siyu:
    """`siyu …` in process on one store; every call names the group."""

    def __init__(self, tmp_path: Path) -> None:
        self.dir = tmp_path
        self.url = f"sqlite:///{tmp_path / 's.db'}"
        self.env = {
            "SIYU_DATABASE_URL": self.url,
            "SIYU_SECRET_KEY": bytes(range(32)).hex(),
            "SIYU_WAREHOUSE": str(tmp_path / "w.duckdb"),
            "SIYU_LANG": "en",
            "COLUMNS": "200",
        }

    def __call__(self, *args: str) -> Result:
        return CliRunner().invoke(app, [*args, "--group", GROUP], env=self.env)

    def ok(self, *args: str) -> Result:
        done = self(*args)
        assert done.exit_code == 0, done.output
        return done

    def json(self, *args: str) -> Any:
        return json.loads(self.ok(*args, "--json").stdout)

    def put(self, doc: dict[str, Any], name: str) -> Result:
        (self.dir / name).write_text(json.dumps(doc, ensure_ascii=False), encoding="utf-8")
        return self("coupons", "template", "put", str(self.dir / name))

    def scalar(self, sql: str) -> Any:
        engine = make_engine(self.url)
        try:
            with engine.connect() as conn:
                return conn.execute(text(sql), {"g": GROUP}).scalar_one()
        finally:
            engine.dispose()


@pytest.fixture
def siyu(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Siyu:
    """Three members (ids 1 to 3, by import order); M1 and M2 bought once each, and the
    segment `buyers` (one order or more) is evaluated: members 1 and 2."""
    # the CLI's console took its width from COLUMNS when it was imported (80 on a CI
    # runner): the tables are read here at the width the env above asks for
    monkeypatch.setattr(common.out, "width", 200)
    run = Siyu(tmp_path)
    write_reference(tmp_path / "brand")
    members = [
        {
            "member_ref": f"M{i}",
            "brand_id": "B1",
            "registered_at": "2024-01-01T00:00:00",
            "channel": "pos",
            "card": f"C{i}",
            "phone": f"1380000000{i}",
        }
        for i in (1, 2, 3)
    ]
    orders = [
        {
            "order_id": f"O{i}",
            "brand_id": "B1",
            "channel": "pos",
            "buyer_type": "card",
            "buyer_value": f"C{i}",
            "store_id": "S1",
            "ordered_at": "2024-02-01T10:00:00",
            "total_fen": "1000",
            "paid_fen": "1000",
        }
        for i in (1, 2)
    ]
    write(tmp_path / "brand" / "members.csv", members)
    write(tmp_path / "brand" / "orders.csv", orders)
    run.ok("import", str(tmp_path / "brand"))
    run.ok("warehouse", "land")
    rule = json.dumps({"version": 1, "rule": {"orders": {"count": {"gte": 1}}}})
    run.ok(
        "segments", "define", "buyers", "--rule", rule, "--name-zh", "买家", "--name-en", "Buyers"
    )
    run.ok("segments", "evaluate")
    assert run.scalar("SELECT COUNT(*) FROM members WHERE group_id = :g") == 3
    assert run.scalar("SELECT MAX(member_id) FROM members WHERE group_id = :g") == 3
    return run


def test_a_bad_template_is_refused_naming_the_field_and_nothing_is_stored(siyu: Siyu) -> None:
    bad = siyu.put({**WELCOME, "face_value_fen": -5}, "bad.json")
    assert bad.exit_code == 2
    assert "face_value_fen: Input should be greater than or equal to 0" in bad.output
    # a rule across fields names the field it is about
    mixed = siyu.put({**WELCOME, "percent_off": 10}, "mixed.json")
    assert mixed.exit_code == 2 and "percent_off does not apply to a fixed coupon" in mixed.output
    unreadable = siyu("coupons", "template", "put", str(siyu.dir / "missing.json"))
    assert unreadable.exit_code == 2 and "FILE: cannot read" in unreadable.output
    assert siyu.json("coupons", "template", "list") == {"templates": []}
    assert "No coupon templates." in siyu.ok("coupons", "template", "list").stdout


def test_put_list_issue_liability_and_expire(siyu: Siyu) -> None:
    # templates: a second put of a code is its next version; list shows the newest
    assert "welcome10: version 1 stored" in siyu.put(WELCOME, "w.json").stdout
    assert "welcome10: version 2 stored" in siyu.put(WELCOME, "w.json").stdout
    assert siyu.put(SPRING, "s.json").exit_code == 0
    listed = siyu.json("coupons", "template", "list")["templates"]
    assert [(t["code"], t["version"], t["kind"]) for t in listed] == [
        ("spring", 1, "shipping"),
        ("welcome10", 2, "fixed"),
    ]
    assert listed[1]["face_value_fen"] == 1000 and listed[1]["limits"]["per_member"] == 1
    table = siyu.ok("coupons", "template", "list").stdout
    assert "welcome10" in table and "10.00" in table and "1 per member" in table
    assert "budget ¥5,000.00" in table and "none" in table  # spring has no limits

    # to members by id: an unknown member is refused, not failed
    to_members = ("coupons", "issue", "welcome10", "--key", "wk1")
    first = siyu.json(*to_members, "--member", "1", "--member", "2", "--member", "99")
    assert first == {
        "template": "welcome10",
        "version": 2,
        "issued": 2,
        "replayed": 0,
        "refused": 1,
        "refusals": {"unknown member": 1},
    }
    # the same key again issues nothing new
    again = siyu.ok(*to_members, "--member", "1", "--member", "2", "--member", "99").stdout
    assert "issued 0, replayed 2, refused 1" in again and "refused, unknown member: 1" in again

    # from a file (a segment export's CSV): member 1 already holds its one welcome coupon
    (siyu.dir / "ids.csv").write_text("\ufeffmember_id,name\r\n1,*\r\n3,*\r\n", encoding="utf-8")
    from_file = siyu.json(
        "coupons", "issue", "welcome10", "--key", "wk2", "--members-file", str(siyu.dir / "ids.csv")
    )
    assert (from_file["issued"], from_file["refusals"]) == (1, {"limits.per_member": 1})

    # to a segment, by slug and then by id: the same members, once
    by_slug = siyu.json("coupons", "issue", "spring", "--segment", "buyers", "--key", "sp1")
    assert (by_slug["issued"], by_slug["refused"]) == (2, 0)
    segment_id = siyu.scalar("SELECT segment_id FROM segments WHERE group_id = :g")
    by_id = siyu.json("coupons", "issue", "spring", "--segment", str(segment_id), "--key", "sp1")
    assert (by_id["issued"], by_id["replayed"]) == (0, 2)

    # one welcome coupon redeemed at a till
    engine = make_engine(siyu.url)
    try:
        code = siyu.scalar(
            "SELECT code FROM coupons WHERE group_id = :g AND template_code = 'welcome10' "
            "ORDER BY coupon_id LIMIT 1"
        )
        basket = Basket("pos", (BasketLine("K1", 1, 9900, "B1"),), "S1")
        assert redeem(engine, GROUP, Redemption(code, "O9", basket, "r1")).off_fen == 1000
    finally:
        engine.dispose()

    # liability: the counts match the coupons' states, face value and cost follow
    rows = siyu.json("coupons", "liability")["templates"]
    by_code = {r["template_code"]: r for r in rows}
    welcome, spring = by_code["welcome10"], by_code["spring"]
    assert (welcome["issued"], welcome["redeemed"], welcome["outstanding"]) == (3, 1, 2)
    assert (welcome["outstanding_face_fen"], welcome["outstanding_cost_fen"]) == (2000, 1600)
    assert (spring["issued"], spring["outstanding"], spring["outstanding_face_fen"]) == (2, 2, 3000)
    for r in rows:
        held = siyu.scalar(
            "SELECT COUNT(*) FROM coupons WHERE group_id = :g AND status = 'issued' "
            f"AND template_code = '{r['template_code']}'"
        )
        assert r["outstanding"] == held
    shown = siyu.ok("coupons", "liability").stdout
    assert "Coupon liability" in shown
    assert "20.00" in shown and "16.00" in shown and "30.00" in shown  # outstanding, yuan
    assert "Total" in shown and "50.00" in shown  # 20 + 30 yuan of face value
    siyu.env["SIYU_LANG"] = "zh"
    assert "优惠券负债" in siyu.ok("coupons", "liability").stdout
    siyu.env["SIYU_LANG"] = "en"

    # expiry: nothing is due now; at a time past every validity, all four outstanding go
    assert "expired 0 coupons" in siyu.ok("coupons", "expire").stdout
    later = ("--at", "2099-01-01T00:00:00")
    assert siyu.json("coupons", "expire", *later)["expired"] == 4
    assert siyu.json("coupons", "expire", *later)["expired"] == 0  # safe to re-run
    after = siyu.json("coupons", "liability", "--at", "2099-01-02")["templates"]
    assert [(r["template_code"], r["outstanding"], r["expired"]) for r in after] == [
        ("spring", 0, 2),
        ("welcome10", 0, 2),
    ]
    assert all(r["outstanding_face_fen"] == r["outstanding_cost_fen"] == 0 for r in after)
    # as of before the expiry run, the figure stays what it was
    before = siyu.json("coupons", "liability", "--at", "2098-12-31")["templates"]
    assert sum(r["outstanding"] for r in before) == 4


def test_the_nightly_run_and_refusals_of_the_command_line(siyu: Siyu) -> None:
    assert siyu.put(WELCOME, "w.json").exit_code == 0
    assert siyu.json("coupons", "run") == {
        "expired": 0,
        "tier_packs": {"issued": 0, "refused": 0, "no_template": 0},
    }
    ran = siyu.ok("coupons", "run").stdout
    assert "expired 0 coupons" in ran and "tier packs: issued 0" in ran
    issue = ("coupons", "issue", "welcome10", "--key", "k")
    neither = siyu(*issue)
    assert neither.exit_code == 2 and "--member: give exactly one of" in neither.output
    both = siyu(*issue, "--member", "1", "--segment", "buyers")
    assert both.exit_code == 2 and "--member: give exactly one of" in both.output
    nowhere = siyu(*issue, "--segment", "nobody")
    assert nowhere.exit_code == 2 and "segment: no segment 'nobody'" in nowhere.output
    unknown = siyu("coupons", "issue", "nope", "--key", "k", "--member", "1")
    assert unknown.exit_code == 2 and "template: no coupon template 'nope'" in unknown.output
    when = siyu("coupons", "expire", "--at", "soon")
    assert when.exit_code == 2 and "--at: an ISO date or time" in when.output
    assert siyu.scalar("SELECT COUNT(*) FROM coupons WHERE group_id = :g") == 0


def test_a_members_file_is_ids_one_a_line_or_a_csv_with_member_id(tmp_path: Path) -> None:
    plain = tmp_path / "ids.txt"
    plain.write_text("# spring campaign\n12\n\n7\n", encoding="utf-8")
    assert member_ids_in(plain) == [12, 7]
    plain.write_text("12\nx7\n", encoding="utf-8")
    with pytest.raises(ValidationError, match=r"line 2: 'x7' is not a member id"):
        member_ids_in(plain)
    table = tmp_path / "ids.csv"
    table.write_text("phone,name\n138,*\n", encoding="utf-8")
    with pytest.raises(ValidationError, match="member_id column"):
        member_ids_in(table)


def test_yuan_is_exact() -> None:
    assert [yuan(f) for f in (0, 5, 123456, -1050, 10**11)] == [
        "0.00",
        "0.05",
        "1,234.56",
        "-10.50",
        "1,000,000,000.00",
    ]

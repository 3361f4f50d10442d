"""SMS through Tencent Cloud SMS (API 3.0 `SendSms`, version 2021-01-11), each request
signed with TC3-HMAC-SHA256 as Tencent Cloud publishes it (`tc3_authorization`, tested
against the published worked example).

`content.template` is the SMS template id; its params, in key order (`1`, `2`, ... or any
names: sorted), are the TemplateParamSet. The messages of a batch are grouped per send and
sent 200 numbers a request (the API's limit). SessionContext carries the idempotency key
of the first message of the request (and how many more): Tencent Cloud echoes it in
status callbacks but dedupes nothing, so a message delivered again after a lost answer
can arrive twice; this is the one channel without a platform-side dedupe key.

Each number's `Code`: "Ok" sent (`SerialNo` is the provider reference); a wrong number,
a blacklisted number, an unapproved template or signature, bad template parameters or
a sensitive word are permanent; "LimitExceeded.*" (e.g. PhoneNumberDailyLimit) and
anything else are tried again later. An error for the whole request (Response.Error) is
tried again later, except InvalidParameter* and a refused template or signature.

Delivery receipts come from Tencent Cloud's status callback (短信下发状态回调): a JSON array
of reports, each with `sid` (the `SerialNo` answered at send time), `report_status`
SUCCESS or FAIL, `errmsg` (the carrier's code, DELIVRD on success), `description`,
`user_receive_time` (Beijing time) and the mobile number, which `status_receipts` never
reads past the report.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections import defaultdict
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from siyu.messaging.transports.base import Message, Outcome, Receipt
from siyu.messaging.transports.tokens import PlatformUnreachable, exchange, required

ALGORITHM = "TC3-HMAC-SHA256"
SERVICE = "sms"
ACTION = "SendSms"
VERSION = "2021-01-11"
CONTENT_TYPE = "application/json; charset=utf-8"
BATCH = 200
PERMANENT_PREFIXES = (
    "InvalidParameter",
    "FailedOperation.PhoneNumberInBlacklist",
    "FailedOperation.TemplateIncorrectOrUnapproved",
    "FailedOperation.SignatureIncorrectOrUnapproved",
    "FailedOperation.ContainSensitiveWord",
    "FailedOperation.MissingTemplateToModify",
    "UnsupportedOperation",
)


def _hmac(key: bytes, message: str) -> bytes:
    return hmac.new(key, message.encode(), hashlib.sha256).digest()


def canonical_request(
    payload: str, headers: Mapping[str, str], method: str = "POST", query: str = ""
) -> tuple[str, str]:
    """The canonical request and its signed-header list: headers lower-cased, trimmed and
    sorted by name; the payload's SHA-256 in hex."""
    found = sorted((k.strip().lower(), v.strip().lower()) for k, v in headers.items())
    canonical = "".join(f"{k}:{v}\n" for k, v in found)
    signed = ";".join(k for k, _ in found)
    hashed = hashlib.sha256(payload.encode()).hexdigest()
    return "\n".join([method, "/", query, canonical, signed, hashed]), signed


def string_to_sign(canonical: str, timestamp: int, service: str) -> str:
    date = datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%d")
    digest = hashlib.sha256(canonical.encode()).hexdigest()
    return f"{ALGORITHM}\n{timestamp}\n{date}/{service}/tc3_request\n{digest}"


def signing_key(secret_key: str, date: str, service: str) -> bytes:
    secret_date = _hmac(("TC3" + secret_key).encode(), date)
    return _hmac(_hmac(secret_date, service), "tc3_request")


def tc3_authorization(
    secret_id: str,
    secret_key: str,
    service: str,
    timestamp: int,
    payload: str,
    headers: Mapping[str, str],
) -> str:
    """The Authorization header for a POST of `payload` with the signed `headers`
    (content-type and host at least; x-tc-action is recommended)."""
    canonical, signed = canonical_request(payload, headers)
    date = datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%d")
    to_sign = string_to_sign(canonical, timestamp, service)
    key = signing_key(secret_key, date, service)
    signature = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
    return (
        f"{ALGORITHM} Credential={secret_id}/{date}/{service}/tc3_request, "
        f"SignedHeaders={signed}, Signature={signature}"
    )


def e164(phone: str) -> str:
    """+86 for a mainland number given without a country code."""
    return phone if phone.startswith("+") else f"+86{phone}"


def _permanent(code: str) -> bool:
    return code.startswith(PERMANENT_PREFIXES)


class SmsTransport:
    code = "sms"

    def __init__(self, settings: Mapping[str, Any]) -> None:
        self.secret_id, self.secret_key, self.app_id, self.sign_name = required(
            settings, "secret_id", "secret_key", "sdk_app_id", "sign_name"
        )
        self.endpoint = str(settings.get("endpoint", "https://sms.tencentcloudapi.com"))
        self.host = self.endpoint.split("://", 1)[-1].split("/", 1)[0]
        self.region = str(settings.get("region", "ap-guangzhou"))
        self.timeout = float(settings.get("timeout", 10.0))
        self.clock = lambda: int(datetime.now(UTC).timestamp())

    def deliver(self, messages: Sequence[Message]) -> list[Outcome]:
        answers: dict[int, Outcome] = {}
        by_send: dict[int, list[int]] = defaultdict(list)
        for i, message in enumerate(messages):
            by_send[message.send_id].append(i)
        for indexes in by_send.values():
            for start in range(0, len(indexes), BATCH):
                chunk = indexes[start : start + BATCH]
                found = self._request([messages[i] for i in chunk])
                answers.update(zip(chunk, found, strict=True))
        return [answers[i] for i in range(len(messages))]

    def body(self, messages: Sequence[Message]) -> dict[str, Any]:
        first = messages[0]
        params = first.content.get("params", {})
        context = first.idempotency_key + (f"+{len(messages) - 1}" if len(messages) > 1 else "")
        return {
            "PhoneNumberSet": [e164(m.address) for m in messages],
            "SmsSdkAppId": self.app_id,
            "SignName": self.sign_name,
            "TemplateId": str(first.content["template"]),
            "TemplateParamSet": [str(params[k]) for k in sorted(params, key=_order)],
            "SessionContext": context,
        }

    def _request(self, messages: Sequence[Message]) -> list[Outcome]:
        payload = json.dumps(self.body(messages), ensure_ascii=False)
        timestamp = self.clock()
        signed = {"Content-Type": CONTENT_TYPE, "Host": self.host, "X-TC-Action": ACTION}
        headers = {
            **signed,
            "Authorization": tc3_authorization(
                self.secret_id, self.secret_key, SERVICE, timestamp, payload, signed
            ),
            "X-TC-Timestamp": str(timestamp),
            "X-TC-Version": VERSION,
            "X-TC-Region": self.region,
        }
        try:
            answer = exchange(self.endpoint, payload.encode(), self.timeout, headers)
        except PlatformUnreachable as exc:
            return [Outcome(False, error=str(exc))] * len(messages)
        response = answer.get("Response") or {}
        error = response.get("Error")
        if error:
            code = str(error.get("Code", ""))
            return [
                Outcome(False, error=f"SendSms: {code}"[:300], permanent=_permanent(code))
            ] * len(messages)
        by_phone = {s.get("PhoneNumber"): s for s in response.get("SendStatusSet") or []}
        found = []
        for message in messages:
            status = by_phone.get(e164(message.address))
            if status is None:
                found.append(Outcome(False, error="SendSms: number missing from the answer"))
            elif status.get("Code") == "Ok":
                found.append(Outcome(True, provider_ref=str(status.get("SerialNo", ""))[:128]))
            else:
                code = str(status.get("Code", ""))
                found.append(
                    Outcome(False, error=f"SendSms: {code}"[:300], permanent=_permanent(code))
                )
        return found


def _order(key: str) -> tuple[int, str]:
    return (int(key), "") if key.isdigit() else (1 << 30, key)


BEIJING = timezone(timedelta(hours=8))


def status_receipts(reports: Any) -> tuple[list[Receipt], int]:
    """The receipts in a status callback's body, and how many reports were unreadable
    (not an object, no `sid`, a `report_status` other than SUCCESS / FAIL)."""
    if not isinstance(reports, list):
        raise ValueError("a status callback's body is a JSON array of reports")
    found, unreadable = [], 0
    for report in reports:
        sid = report.get("sid") if isinstance(report, dict) else None
        status = report.get("report_status") if isinstance(report, dict) else None
        if not isinstance(sid, str) or not sid or status not in ("SUCCESS", "FAIL"):
            unreadable += 1
            continue
        assert isinstance(report, dict)
        ok = status == "SUCCESS"
        reason = f"{report.get('errmsg', '')}: {report.get('description', '')}"
        found.append(
            Receipt(
                sid[:128],
                "delivered" if ok else "failed",
                f"sms:{sid}"[:128],
                _received_at(report.get("user_receive_time")),
                None if ok else reason[:300],
            )
        )
    return found, unreadable


def _received_at(raw: Any) -> datetime | None:
    try:
        local = datetime.strptime(str(raw), "%Y-%m-%d %H:%M:%S")
    except ValueError:
        return None
    return local.replace(tzinfo=BEIJING).astimezone(UTC)


def build(settings: Mapping[str, Any]) -> SmsTransport:
    """Settings: secret_id, secret_key, sdk_app_id, sign_name; endpoint, region, timeout."""
    return SmsTransport(settings)

"""A local stand-in for WeCom, WeChat and Tencent Cloud SMS: it checks each request body
against the published request schema (siyu/messaging/transports/schemas) with
`jsonschema`, answers as the platform does (access tokens, the shared stable token,
msgids, fail lists, per-number codes, the template message's client_msg_id dedupe, the
SMS request signature), fails on demand (the next calls to a path answer chosen errcodes;
tokens expire), and records every request."""

from __future__ import annotations

import json
import threading
import urllib.parse
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib.resources import files
from itertools import count
from typing import Any

from jsonschema import Draft202012Validator

from siyu.messaging.transports.sms import tc3_authorization

SCHEMAS = {
    "/cgi-bin/externalcontact/add_msg_template": "wecom_add_msg_template",
    "/cgi-bin/externalcontact/get_groupmsg_send_result": "wecom_get_groupmsg_send_result",
    "/cgi-bin/message/subscribe/send": "wechat_subscribe_send",
    "/cgi-bin/message/template/send": "wechat_template_send",
    "/": "tencentcloud_sms_send",
    "/cgi-bin/stable_token": "wechat_stable_token",
}
WECOM_PATHS = (
    "/cgi-bin/externalcontact/add_msg_template",
    "/cgi-bin/externalcontact/get_groupmsg_send_result",
)


def validator(name: str) -> Draft202012Validator:
    text = files("siyu.messaging.transports").joinpath(f"schemas/{name}.json").read_text()
    schema = json.loads(text)
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema)


@dataclass
class Recorded:
    path: str
    query: dict[str, str]
    headers: dict[str, str]  # names lower-cased
    body: Any


@dataclass
class Platform:
    corpid: str = "ww-corp"
    corpsecret: str = "corp-secret-not-for-logs"
    appid: str = "wx-app"
    secret: str = "app-secret-not-for-logs"
    sms_secret_id: str = "AKID-test"
    sms_secret_key: str = "sms-secret-not-for-logs"
    requests: list[Recorded] = field(default_factory=list)
    schema_errors: list[str] = field(default_factory=list)
    fail: dict[str, list[Any]] = field(default_factory=dict)  # path -> next answers' codes
    refused: set[str] = field(default_factory=set)  # openids not subscribed: 43101
    unfollowed: set[str] = field(default_factory=set)  # openids not following: 43004
    not_friends: set[str] = field(default_factory=set)  # external_userids: fail_list
    sms_codes: dict[str, str] = field(default_factory=dict)  # phone -> Code
    results: dict[str, dict[str, int]] = field(default_factory=dict)  # msgid -> status
    token_fetches: int = 0
    stable_token: str | None = None  # the appid's stable token in force
    delivered: dict[str, int] = field(default_factory=dict)  # template client_msg_id

    def __post_init__(self) -> None:
        self.lock = threading.Lock()
        self.valid: set[str] = set()
        self.ids = count(1)
        self.msgids: dict[str, str] = {}
        self.validators = {path: validator(name) for path, name in SCHEMAS.items()}

    def expire_tokens(self) -> None:
        with self.lock:
            self.valid.clear()

    def posts(self, path: str) -> list[Recorded]:
        return [r for r in self.requests if r.path == path and r.body is not None]

    # --- answers ---------------------------------------------------------------

    def get(self, path: str, query: dict[str, str]) -> dict[str, Any]:
        with self.lock:
            self.requests.append(Recorded(path, query, {}, None))
            if path == "/cgi-bin/gettoken":
                ok = (
                    query.get("corpid") == self.corpid
                    and query.get("corpsecret") == self.corpsecret
                )
            elif path == "/cgi-bin/token":
                ok = (
                    query.get("grant_type") == "client_credential"
                    and query.get("appid") == self.appid
                    and query.get("secret") == self.secret
                )
            else:
                return {"errcode": 404, "errmsg": "no such api"}
            if not ok:
                return {"errcode": 40001, "errmsg": "invalid credential"}
            self.token_fetches += 1
            token = f"token-{next(self.ids)}"
            self.valid.add(token)
            return {"errcode": 0, "errmsg": "ok", "access_token": token, "expires_in": 7200}

    def post(self, path: str, query: dict[str, str], headers: dict[str, str], raw: bytes) -> Any:
        body = json.loads(raw)
        with self.lock:
            self.requests.append(Recorded(path, query, headers, body))
            errors = [
                f"{e.json_path}: {e.message}" for e in self.validators[path].iter_errors(body)
            ]
            self.schema_errors.extend(f"{path}: {e}" for e in errors)
            if path == "/":
                return self._sms(headers, raw, body, errors)
            if path == "/cgi-bin/stable_token":
                return self._stable_token(body, errors)
            if query.get("access_token") not in self.valid:
                return {"errcode": 42001, "errmsg": "access_token expired"}
            queued = self.fail.get(path)
            if queued:
                code = queued.pop(0)
                return {"errcode": code, "errmsg": "failing on demand"}
            if errors:
                return {"errcode": 47001, "errmsg": "data format error"}
            return getattr(self, "_" + path.rsplit("/", 1)[1])(body)

    def _stable_token(self, body: dict[str, Any], errors: list[str]) -> dict[str, Any]:
        """Normal mode answers the token in force (every caller of the appid the same);
        force_refresh retires it and issues another."""
        if errors:
            return {"errcode": 40002, "errmsg": "invalid grant_type or body"}
        if body["appid"] != self.appid or body["secret"] != self.secret:
            return {"errcode": 40125, "errmsg": "invalid appsecret"}
        current = self.stable_token
        if body.get("force_refresh") or current is None or current not in self.valid:
            self.valid.discard(current or "")
            current = self.stable_token = f"stable-{next(self.ids)}"
            self.valid.add(current)
            self.token_fetches += 1
        return {"access_token": current, "expires_in": 7200}

    def _add_msg_template(self, body: dict[str, Any]) -> dict[str, Any]:
        failed = [c for c in body["external_userid"] if c in self.not_friends]
        msgid = f"msg{next(self.ids)}"
        self.results[msgid] = {c: 0 for c in body["external_userid"] if c not in failed}
        return {"errcode": 0, "errmsg": "ok", "fail_list": failed, "msgid": msgid}

    def _get_groupmsg_send_result(self, body: dict[str, Any]) -> dict[str, Any]:
        found = sorted(self.results.get(body["msgid"], {}).items())
        start = int(body.get("cursor") or 0)
        page = found[start : start + int(body.get("limit", 500))]
        more = start + len(page) < len(found)
        return {
            "errcode": 0,
            "errmsg": "ok",
            "next_cursor": str(start + len(page)) if more else "",
            "send_list": [
                {
                    "external_userid": c,
                    "userid": body["userid"],
                    "status": s,
                    **({"send_time": 1893456000} if s else {}),
                }
                for c, s in page
            ],
        }

    def _send(self, body: dict[str, Any]) -> dict[str, Any]:  # subscribe or template
        if body["touser"] in self.refused:
            return {"errcode": 43101, "errmsg": "user refuse to accept the msg"}
        if body["touser"] in self.unfollowed:
            return {"errcode": 43004, "errmsg": "require subscribe"}
        key = body.get("client_msg_id")
        if key is None:
            return {"errcode": 0, "errmsg": "ok", "msgid": next(self.ids)}
        if key not in self.msgids:  # the platform drops a repeated client_msg_id
            self.msgids[key] = str(next(self.ids))
            self.delivered[key] = self.delivered.get(key, 0) + 1
        return {"errcode": 0, "errmsg": "ok", "msgid": int(self.msgids[key])}

    def _sms(
        self, headers: dict[str, str], raw: bytes, body: dict[str, Any], errors: list[str]
    ) -> dict[str, Any]:
        def error(code: str) -> dict[str, Any]:
            return {"Response": {"Error": {"Code": code, "Message": code}, "RequestId": "r"}}

        signed = {k: headers.get(k, "") for k in ("content-type", "host", "x-tc-action")}
        expected = tc3_authorization(
            self.sms_secret_id,
            self.sms_secret_key,
            "sms",
            int(headers["x-tc-timestamp"]),
            raw.decode(),
            signed,
        )
        if headers.get("authorization") != expected or signed["x-tc-action"] != "SendSms":
            return error("AuthFailure.SignatureFailure")
        queued = self.fail.get("/")
        if queued:
            return error(queued.pop(0))
        if errors:
            return error("InvalidParameterValue")
        statuses = []
        for phone in body["PhoneNumberSet"]:
            code = self.sms_codes.get(phone, "Ok")
            statuses.append(
                {
                    "SerialNo": f"sn-{next(self.ids)}",
                    "PhoneNumber": phone,
                    "Fee": 1,
                    "SessionContext": body.get("SessionContext", ""),
                    "Code": code,
                    "Message": "send success" if code == "Ok" else code,
                    "IsoCode": "CN",
                }
            )
        return {"Response": {"SendStatusSet": statuses, "RequestId": "r"}}


@contextmanager
def serving(platform: Platform) -> Iterator[str]:
    """Serve `platform` on a free local port; yields its base URL."""

    class Handler(BaseHTTPRequestHandler):
        def _answer(self, found: Any) -> None:
            raw = json.dumps(found, ensure_ascii=False).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(raw)))
            self.end_headers()
            self.wfile.write(raw)

        def _split(self) -> tuple[str, dict[str, str]]:
            url = urllib.parse.urlsplit(self.path)
            return url.path, dict(urllib.parse.parse_qsl(url.query))

        def do_GET(self) -> None:  # http.server calls it by this name
            path, query = self._split()
            self._answer(platform.get(path, query))

        def do_POST(self) -> None:
            path, query = self._split()
            raw = self.rfile.read(int(self.headers["Content-Length"]))
            self._answer(
                platform.post(path, query, {k.lower(): v for k, v in self.headers.items()}, raw)
            )

        def log_message(self, *args: Any) -> None:  # tokens and addresses: never logged
            return None

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()

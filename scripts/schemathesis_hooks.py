"""Schemathesis hooks for the partner API (scripts/schemathesis.sh, make api-fuzz).

- Every request is signed as a partner signs it (docs/partner-api.md, Authentication): a
  `requests` auth that runs on the prepared request, so the signature covers the exact
  method, path, query and body bytes that go on the wire.
- Valid requests are, half the time, pointed at the records the script seeded (a
  conversation, its messages and a cursor, the user's channel, openid, app user and image),
  so the operations are exercised beyond "not found"; and they keep the rules the document
  gives in words, which OpenAPI cannot state (see `conform`).
- An image URL the bridge would download always points at WXBRIDGE_FUZZ_IMAGE_URL (the
  local desk), whatever was generated: the run sends nothing off the machine.
- A 503 `unavailable` is repeated as the API asks of partners (see `repeat_unavailable`).
- What each operation answered is written to WXBRIDGE_FUZZ_STATUSES for the summary.

Environment (set by scripts/schemathesis.sh):
  WXBRIDGE_FUZZ_API        the API's base URL (the function URL, without /v1)
  WXBRIDGE_FUZZ_PARTNER    the partner that signs
  WXBRIDGE_FUZZ_SECRET     its signing secret
  WXBRIDGE_FUZZ_SEEDS      a JSON file of seeded ids: {"conversation_id": [...], ...}
  WXBRIDGE_FUZZ_IMAGE_URL  where image URLs point
  WXBRIDGE_FUZZ_STATUSES   where the answers' tally goes
"""

from __future__ import annotations

import atexit
import collections
import hashlib
import hmac
import json
import os
import secrets
import time
from urllib.parse import urlsplit

import requests
import schemathesis
from hypothesis import strategies as st

API = os.environ["WXBRIDGE_FUZZ_API"].rstrip("/")
PARTNER = os.environ["WXBRIDGE_FUZZ_PARTNER"]
SECRET = os.environ["WXBRIDGE_FUZZ_SECRET"].encode()
# The part of the URL's path that is not the API's (the local function URL's prefix).
BASE_PATH = urlsplit(API).path.rstrip("/")


def signed_headers(method: str, path_and_query: str, body: bytes) -> dict[str, str]:
    """The partner's headers for a request: v1= + hex HMAC-SHA256(secret,
    METHOD\\npath?query\\ntimestamp\\nnonce\\nhex SHA-256(body))."""
    timestamp = str(int(time.time()))
    nonce = secrets.token_hex(16)
    canonical = "\n".join(
        [method.upper(), path_and_query, timestamp, nonce, hashlib.sha256(body).hexdigest()]
    )
    signature = hmac.new(SECRET, canonical.encode(), hashlib.sha256).hexdigest()
    return {
        "X-Wxbridge-Partner": PARTNER,
        "X-Wxbridge-Timestamp": timestamp,
        "X-Wxbridge-Nonce": nonce,
        "X-Wxbridge-Signature": f"v1={signature}",
    }


class PartnerSignature(requests.auth.AuthBase):
    """Signs the prepared request: its final URL and body bytes."""

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        url = urlsplit(request.url)
        path = url.path
        if BASE_PATH and path.startswith(BASE_PATH):
            path = path[len(BASE_PATH):] or "/"
        path_and_query = f"{path}?{url.query}" if url.query else path
        body = request.body or b""
        if isinstance(body, str):
            body = body.encode()
        request.headers.update(signed_headers(request.method, path_and_query, body))
        return request


# Where an image URL in a reply points: the bridge downloads it (the dispatch function), so
# every generated URL is sent to this loopback address instead, never elsewhere.
IMAGE_URL = os.environ.get("WXBRIDGE_FUZZ_IMAGE_URL", "http://127.0.0.1:9/fuzz.png")


def loopback_images(body):
    content = body.get("content") if isinstance(body, dict) else None
    if (
        isinstance(content, dict)
        and content.get("type") == "image"
        and isinstance(content.get("url"), str)
        and content["url"][:4].lower() == "http"
    ):
        content["url"] = IMAGE_URL


# A 503 `unavailable` asks the partner to repeat the request (docs/partner-api.md, Errors):
# it is repeated, newly signed, twice at most, as a partner would (and as make load does);
# only one that persists is the answer checked. The local emulator serves DynamoDB one
# request at a time, so a burst of the stack's own work can hold a request past the SDK's
# timeout. Each repeat is counted in the summary.
REPEATED: collections.Counter = collections.Counter()


def repeat_unavailable(response, *args, **kwargs):
    for _ in range(2):
        if response.status_code != 503 or b'"unavailable"' not in response.content:
            break
        REPEATED[f"{response.request.method} {urlsplit(response.request.url).path}"] += 1
        time.sleep(1)
        request = PartnerSignature()(response.request.copy())
        response = response.connection.send(request, **kwargs)
    return response


@schemathesis.hook
def before_call(context, case, kwargs):
    kwargs["hooks"] = {"response": [repeat_unavailable]}
    # The coverage phase does not go through the generation hooks: its valid cases keep
    # the rules here.
    meta = getattr(case, "meta", None)
    if meta is not None and not meta.generation.mode.is_negative:
        conform(case)
    loopback_images(case.body)
    kwargs["auth"] = PartnerSignature()


# ---------------------------------------------------------------------------------------
# The seeded records.

SEEDS: dict[str, list] = {}
if os.path.exists(os.environ.get("WXBRIDGE_FUZZ_SEEDS", "")):
    with open(os.environ["WXBRIDGE_FUZZ_SEEDS"]) as f:
        SEEDS = {name: values for name, values in json.load(f).items() if values}


def seeded(params, names):
    """`params` with, for each of `names` it has and the seeds know, a seeded value."""
    if not isinstance(params, dict):
        return st.just(params)
    known = {n: st.sampled_from(SEEDS[n]) for n in names if n in params and n in SEEDS}
    if not known:
        return st.just(params)
    return st.fixed_dictionaries(known).map(lambda values: {**params, **values})


def seeded_body(body):
    if not isinstance(body, dict):
        return st.just(body)
    strategies = [seeded(body, ["conversation_id"])]
    if isinstance(body.get("to"), dict):
        strategies.append(
            seeded(body["to"], ["channel", "openid", "app_user_id"]).map(
                lambda to: {**body, "to": to}
            )
        )
    if isinstance(body.get("to"), str) and "partner" in SEEDS:
        strategies.append(st.sampled_from(SEEDS["partner"]).map(lambda to: {**body, "to": to}))
    return st.one_of(*strategies)


# ---------------------------------------------------------------------------------------
# Rules the document states in words, as OpenAPI cannot: how fields go together, which ids
# exist. A valid (positive) case is made to keep them, so that it reaches the operation;
# invalid (negative) cases are left as generated.


def seed(name, default):
    return SEEDS.get(name, [default])[0]


def recipient(to):
    """channel and openid, or app_user_id (and channel)."""
    to = dict(to) if isinstance(to, dict) else {}
    if to.get("openid") is not None:
        to["app_user_id"] = None
        if to.get("channel") is None:
            to["channel"] = seed("channel", "mp")
    elif to.get("app_user_id") is None:
        to["app_user_id"] = seed("app_user_id", "u-1")
    return to


def content(value, push=False):
    """An image has exactly one of url or base64; a push is not an image."""
    if not isinstance(value, dict) or value.get("type") != "image":
        return value
    if push:
        return {"type": "text", "text": "Your order is ready."}
    if value.get("url") is not None and value.get("base64") is None:
        return value
    return {"type": "image", "url": IMAGE_URL}


def conform(case):
    method, path = case.operation.method.upper(), case.operation.path
    body = case.body
    if path == "/v1/conversations" and isinstance(case.query, dict):
        query = dict(case.query)
        if query.get("openid") is not None:
            query.pop("app_user_id", None)
            query.setdefault("channel", seed("channel", "mp"))
        elif query.get("app_user_id") is None:
            query["app_user_id"] = seed("app_user_id", "u-1")
        case.query = query
    if path.endswith("/messages") and isinstance(case.query, dict) and "cursor" in case.query:
        # A cursor is one the API gave: none is, unless seeded.
        query = dict(case.query)
        if SEEDS.get("cursor"):
            query["cursor"] = SEEDS["cursor"][0]
        else:
            query.pop("cursor")
        case.query = query
    if not isinstance(body, dict):
        return case
    body = dict(body)
    if method == "POST" and path == "/v1/messages":
        body["content"] = content(body.get("content"))
        if body.get("conversation_id") is not None:
            body["to"] = None
        elif body.get("to") is not None:
            body["to"] = recipient(body["to"])
        else:
            body["conversation_id"] = seed("conversation_id", "mp:o:platform")
    elif method == "POST" and path == "/v1/pushes":
        body["content"] = content(body.get("content"), push=True)
        body["to"] = recipient(body.get("to"))
        body["subscribe"] = None
    elif path.endswith("/close"):
        if body.get("closing_text") is not None and body.get("client_message_id") is None:
            body["client_message_id"] = "closing-1"
    elif path.endswith("/handover"):
        if body.get("to") not in SEEDS.get("partner", []) or body.get("to") == PARTNER:
            body["to"] = "hotel-9"
    case.body = body
    return case


def with_seeds(case):
    """A valid case, as generated or aimed at the seeded records, keeping the rules above;
    an invalid one as generated."""
    meta = getattr(case, "meta", None)
    if meta is None or meta.generation.mode.is_negative:
        return st.just(case)

    def aimed(parts):
        path_parameters, query, body = parts
        case.path_parameters = path_parameters
        case.query = query
        case.body = body
        return conform(case)

    if not SEEDS:
        return st.just(conform(case))
    seeded_case = st.tuples(
        seeded(case.path_parameters or {}, ["conversation_id", "message_id", "channel", "openid", "media_id"]),
        seeded(case.query or {}, ["channel", "openid", "app_user_id"]),
        seeded_body(case.body),
    ).map(aimed)
    return st.one_of(st.just(case).map(conform), seeded_case)


@schemathesis.hook
def before_generate_case(context, strategy):
    return strategy.flatmap(with_seeds)


# ---------------------------------------------------------------------------------------
# What each operation answered, for the summary (WXBRIDGE_FUZZ_STATUSES).

STATUSES: collections.Counter = collections.Counter()


@schemathesis.hook
def after_call(context, case, response):
    STATUSES[(case.operation.label, response.status_code)] += 1


@atexit.register
def write_statuses():
    out = os.environ.get("WXBRIDGE_FUZZ_STATUSES")
    if out and STATUSES:
        by_operation: dict[str, dict[str, int]] = {}
        for (label, status), count in sorted(STATUSES.items()):
            by_operation.setdefault(label, {})[str(status)] = count
        with open(out, "w") as f:
            json.dump({"statuses": by_operation, "repeated_503": dict(REPEATED)}, f, indent=2)


# ---------------------------------------------------------------------------------------
# `python scripts/schemathesis_hooks.py seeds FILE CHANNEL OPENID`: reads what the seeded
# user and partner wrote (waiting for it to be stored) and writes the ids the hooks use.


def api_get(path: str) -> dict:
    response = requests.get(API + path, headers=signed_headers("GET", path, b""), timeout=10)
    response.raise_for_status()
    return response.json()


def write_seeds(out: str, channel: str, openid: str) -> None:
    deadline = time.time() + 90
    while True:
        conversations = api_get(f"/v1/conversations?channel={channel}&openid={openid}")[
            "conversations"
        ]
        messages = []
        for conversation in conversations:
            page = api_get(f"/v1/conversations/{conversation['id']}/messages?limit=100")
            messages += page["messages"]
        images = [m for m in messages if (m.get("content") or {}).get("type") == "image"]
        if conversations and images and len(messages) >= 3:
            break
        if time.time() > deadline:
            raise SystemExit(f"the seeded messages were not stored in 90 s: {messages}")
        time.sleep(1)
    conversation = conversations[0]["id"]
    page = api_get(f"/v1/conversations/{conversation}/messages?limit=1")
    seeds = {
        "cursor": [page["next_cursor"]] if page.get("next_cursor") else [],
        "conversation_id": [c["id"] for c in conversations],
        "message_id": [m["id"] for m in messages],
        "media_id": [m["content"]["media_id"] for m in images if m["content"].get("media_id")],
        "channel": [channel],
        "openid": [openid],
        "app_user_id": sorted({c["app_user_id"] for c in conversations if c.get("app_user_id")}),
        "partner": ["hotel-9", "platform"],
    }
    with open(out, "w") as f:
        json.dump(seeds, f, indent=2)
    print(
        f"seeded: {len(seeds['conversation_id'])} conversation(s), "
        f"{len(seeds['message_id'])} message(s), {len(seeds['media_id'])} image(s)"
    )


if __name__ == "__main__":
    import sys

    if len(sys.argv) != 5 or sys.argv[1] != "seeds":
        raise SystemExit("usage: schemathesis_hooks.py seeds FILE CHANNEL OPENID")
    write_seeds(*sys.argv[2:])

"""The CRM's JSON answer is hostile input: mapped when sound, refused with a reason when not."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine import Contact
from plugins.crm_webhook import (
    CrmResponseError,
    SignatureError,
    contact_from_body,
    contact_from_json,
    sign,
    verify,
)
from plugins.crm_webhook._cache import LookupCache
from plugins.crm_webhook._mapping import MAX_IDENTITIES, MAX_RESPONSE_BYTES, MAX_SEGMENTS, MAX_STRING
from plugins.crm_webhook._outbox import backoff_delay, outcome_for_status, record_body


def test_a_full_answer_becomes_a_contact() -> None:
    body = json.dumps({"contact": {"id": 42, "name": "Ana Ruiz", "phones": ["+34911000001"], "emails": "ana@example.com",
                                   "tags": ["vip", "vip", "es"], "fields": {"plan": "gold", "balance": 12.5, "ok": True}}})
    assert contact_from_body(body.encode()) == Contact(
        id="42", name="Ana Ruiz", phones=("+34911000001",), emails=("ana@example.com",), segments=("vip", "es"),
        fields={"plan": "gold", "balance": 12.5, "ok": True})


@pytest.mark.parametrize("body", [b"null", b"{}", b"[]", b'{"contact": null}'])
def test_no_such_customer(body: bytes) -> None:
    assert contact_from_body(body) is None


@pytest.mark.parametrize(("body", "reason"), [
    (b"<html>oops</html>", "not JSON"),
    (b'{"id": 1, "name": "x"', "not JSON"),
    (b"\xff\xfe", "not JSON"),
    (b'{"id": NaN}', "not JSON"),
    (b'"just a string"', "expected an object"),
    (b'{"name": "no id"}', "'id'"),
    (b'{"id": true}', "'id'"),
    (b'{"id": {"$ne": 1}}', "'id'"),
    (b'{"id": "1", "name": ["A"]}', "'name'"),
    (b'{"id": "1", "phones": [1, 2]}', "phones[0]"),
    (b'{"id": "1", "phones": {"a": "b"}}', "'phones'"),
    (b'{"id": "1", "fields": {"nested": {"a": 1}}}', "fields.nested"),
    (b'{"id": "1", "fields": [1]}', "'fields'"),
    (b'{"id": "1", "name": "a\\r\\nX-Injected: 1"}', "control characters"),
    (b'{"id": "1", "fields": {"big": 1e999}}', "finite"),
    (b"[" * 5000 + b"]" * 5000, "nested deeper"),
])
def test_wrong_answers_are_refused_with_a_reason(body: bytes, reason: str) -> None:
    with pytest.raises(CrmResponseError, match=reason.replace("[", r"\[").replace("$", r"\$")):
        contact_from_body(body)


def test_sizes_are_bounded() -> None:
    with pytest.raises(CrmResponseError, match="larger than"):
        contact_from_body(b" " * (MAX_RESPONSE_BYTES + 1))
    with pytest.raises(CrmResponseError, match="'phones' has"):
        contact_from_json({"id": "1", "phones": [f"+3460000{i:04d}" for i in range(MAX_IDENTITIES + 1)]})
    with pytest.raises(CrmResponseError, match="'segments' has"):
        contact_from_json({"id": "1", "segments": ["x"] * (MAX_SEGMENTS + 1)})
    with pytest.raises(CrmResponseError, match="'name' is"):
        contact_from_json({"id": "1", "name": "A" * (MAX_STRING + 1)})


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=5) | st.dictionaries(
        st.sampled_from(["id", "name", "phones", "emails", "tags", "segments", "fields", "contact", "x"]), children,
        max_size=6),
    max_leaves=30,
)


@settings(max_examples=120, deadline=None)
@given(json_values)
def test_any_json_maps_cleanly_or_is_refused(value: object) -> None:
    try:
        contact = contact_from_body(json.dumps(value).encode())
    except CrmResponseError:
        return
    if contact is not None:
        assert contact.id and len(contact.id) <= MAX_STRING
        assert all(isinstance(p, str) for p in contact.phones + contact.emails + contact.segments)
        assert all(isinstance(v, (str, int, float, bool)) or v is None for v in contact.fields.values())


@settings(max_examples=100, deadline=None)
@given(st.binary(max_size=300), st.integers(min_value=1_600_000_000, max_value=2_000_000_000), st.binary(min_size=1, max_size=20))
def test_only_the_exact_signed_body_and_time_verify(body: bytes, stamp: int, tamper: bytes) -> None:
    headers = {"X-Centralita-Timestamp": str(stamp), "X-Centralita-Signature": sign("k", stamp, body)}
    verify("k", headers, body, now=stamp + 10)
    with pytest.raises(SignatureError, match="does not match"):
        verify("k", headers, body + tamper, now=stamp)
    with pytest.raises(SignatureError, match="does not match"):
        verify("other key", headers, body, now=stamp)
    with pytest.raises(SignatureError, match="tolerance"):
        verify("k", headers, body, now=stamp + 3600)  # a replay an hour later
    moved = dict(headers, **{"X-Centralita-Timestamp": str(stamp + 1)})
    with pytest.raises(SignatureError, match="does not match"):
        verify("k", moved, body, now=stamp)


def test_cache_serves_fresh_then_stale_and_stays_bounded() -> None:
    cache = LookupCache(ttl=10, stale_ttl=100, max_entries=2)
    ana = Contact(id="1", name="Ana")
    cache.put(("phone", "1"), ana, now=0)
    assert cache.fresh(("phone", "1"), now=5) is not None
    assert cache.fresh(("phone", "1"), now=50) is None
    entry = cache.stale(("phone", "1"), now=50)
    assert entry is not None and entry.contact == ana
    assert cache.stale(("phone", "1"), now=150) is None
    for i in range(5):
        cache.put(("phone", str(i)), None, now=200)
    assert len(cache) == 2


def test_retry_schedule_and_what_statuses_mean() -> None:
    assert [backoff_delay(n, base=1, cap=10) for n in range(6)] == [0, 1, 2, 4, 8, 10]
    assert backoff_delay(10_000, base=1, cap=600) == 600
    assert [outcome_for_status(s) for s in (200, 204, 400, 401, 429, 500, 503)] == [
        "delivered", "delivered", "dead", "dead", "pending", "pending", "pending"]


def test_record_body_is_valid_json_with_plain_attributes_only() -> None:
    body = record_body("d1", "interaction.ended", {"id": "i1"}, "sale",
                       {"lang": "es", "score": float("inf"), "obj": object(), "_private": 1, "vip": True})
    assert json.loads(body) == {"id": "d1", "event": "interaction.ended", "interaction": {"id": "i1"},
                                "disposition": "sale", "attributes": {"lang": "es", "vip": True}}

from __future__ import annotations

import contextlib

import httpx
import pytest

from engine.console import add_token, add_user
from engine.console._auth import token_hash


async def test_without_credentials_api_answers_401(console):
    async with console.client() as client:
        for path in ("/api/v1/status", "/api/v1/agents", "/api/v1/queues", "/api/v1/interactions", "/api/v1/cdr"):
            r = await client.get(path)
            assert r.status_code == 401, path
            assert r.headers["www-authenticate"].startswith("Bearer")
        r = await client.get("/api/v1/agents", headers={"authorization": "Bearer not-a-real-token"})
        assert r.status_code == 401
        r = await client.get("/api/v1/agents", headers={"authorization": "Basic YWRtaW46YWRtaW4="})
        assert r.status_code == 401


@pytest.mark.parametrize(
    ("role", "path", "expected"),
    [
        ("agent", "/api/v1/agents", 200),
        ("agent", "/api/v1/status", 403),
        ("agent", "/api/v1/cdr", 403),
        ("agent", "/api/v1/users", 403),
        ("supervisor", "/api/v1/status", 200),
        ("supervisor", "/api/v1/cdr", 200),
        ("supervisor", "/api/v1/users", 403),
        ("admin", "/api/v1/users", 200),
        ("admin", "/api/v1/status", 200),
    ],
)
async def test_roles_decide_between_200_and_403(console, role, path, expected):
    async with await console.bearer(role) as client:
        assert (await client.get(path)).status_code == expected


async def test_token_added_while_running_works_at_once_and_only_hash_is_stored(console):
    token = await add_token(console.store, "ops", "admin")
    async with console.client(headers={"authorization": f"Bearer {token}"}) as client:
        assert (await client.get("/api/v1/status")).status_code == 200
    rows = await console.store.fetchall("SELECT * FROM console_tokens")
    assert all(token not in str(row) for row in rows)
    assert any(row["token_hash"] == token_hash(token) for row in rows)
    await console.store.write("DELETE FROM console_tokens WHERE name = 'ops'")
    async with console.client(headers={"authorization": f"Bearer {token}"}) as client:
        assert (await client.get("/api/v1/status")).status_code == 401


async def test_first_start_admin_must_change_one_time_password(console):
    assert console.admin_password
    row = await console.store.fetchone("SELECT password_hash FROM console_users WHERE name = 'admin'")
    assert console.admin_password not in row["password_hash"] and row["password_hash"].startswith("$argon2")
    async with console.client() as client:
        r = await client.post("/api/v1/login", json={"user": "admin", "password": console.admin_password})
        assert r.status_code == 200 and r.json()["must_change_password"] is True
        first_cookie = client.cookies["centralita_session"]
        csrf = r.json()["csrf"]
        # everything but the password change is refused until the one-time password is replaced
        assert (await client.get("/api/v1/status")).status_code == 403
        r = await client.post("/api/v1/password", json={"current": console.admin_password, "new": "short"},
                              headers={"x-csrf-token": csrf})
        assert r.status_code == 400
        r = await client.post("/api/v1/password", json={"current": console.admin_password, "new": "a much better password"},
                              headers={"x-csrf-token": csrf})
        assert r.status_code == 200
        assert client.cookies["centralita_session"] != first_cookie  # rotated
        assert (await client.get("/api/v1/status")).status_code == 200
    async with console.client() as client:
        r = await client.post("/api/v1/login", json={"user": "admin", "password": console.admin_password})
        assert r.status_code == 401
        r = await client.post("/api/v1/login", json={"user": "admin", "password": "a much better password"})
        assert r.status_code == 200 and r.json()["must_change_password"] is False


async def test_session_cookie_is_httponly_samesite_strict_and_rotates_at_login(console):
    password = await add_user(console.store, "carol", "supervisor")
    async with console.client() as client:
        r1 = await client.post("/api/v1/login", json={"user": "carol", "password": password})
        cookie_header = r1.headers["set-cookie"]
        assert "HttpOnly" in cookie_header and "SameSite=Strict" in cookie_header
        assert "Secure" not in cookie_header  # plain HTTP on loopback
        old = client.cookies["centralita_session"]
        r2 = await client.post("/api/v1/login", json={"user": "carol", "password": password})
        assert r2.status_code == 200 and client.cookies["centralita_session"] != old
    # the replaced session no longer works
    async with console.client(cookies={"centralita_session": old}) as stale:
        assert (await stale.get("/api/v1/me")).status_code == 401


async def test_cookie_state_change_needs_csrf_token_but_bearer_does_not(console):
    client, csrf = await console.logged_in("sue", "supervisor")
    async with contextlib.aclosing(client):
        r = await client.post("/api/v1/agents/alice/state", json={"state": "paused", "reason": "x"})
        assert r.status_code == 403 and "CSRF" in r.json()["error"]
        r = await client.post("/api/v1/agents/alice/state", json={"state": "paused"}, headers={"x-csrf-token": "wrong"})
        assert r.status_code == 403
        assert console.engine.agents["alice"]["state"] == "available"
        r = await client.post("/api/v1/agents/alice/state", json={"state": "paused"}, headers={"x-csrf-token": csrf})
        assert r.status_code == 200 and console.engine.agents["alice"]["state"] == "paused"
    async with await console.bearer("supervisor") as api:
        r = await api.post("/api/v1/agents/alice/state", json={"state": "available"})
        assert r.status_code == 200 and console.engine.agents["alice"]["state"] == "available"


async def test_wrong_types_in_login_are_400_not_a_login(console):
    async with console.client() as client:
        r = await client.post("/api/v1/login", json={"user": "admin", "password": {"$ne": 1}})
        assert r.status_code == 400 and "password" in r.json()["error"]
        r = await client.post("/api/v1/login", content=b"{not json", headers={"content-type": "application/json"})
        assert r.status_code == 400
        r = await client.post("/api/v1/login", json=["admin", "x"])
        assert r.status_code == 400
        assert "centralita_session" not in client.cookies


async def test_login_backoff_slows_a_guesser_without_locking_out_the_real_user(console):
    password = await add_user(console.store, "dave", "agent")
    stranger = {"user": "dave", "password": "guess"}
    async with console.client() as client:
        statuses = [(await client.post("/api/v1/login", json=stranger)).status_code for _ in range(7)]
        assert statuses[:5] == [401] * 5
        assert 429 in statuses[5:]
        r = await client.post("/api/v1/login", json={"user": "dave", "password": password})
        assert r.status_code == 429 and int(r.headers["retry-after"]) >= 1
    # the real user, from another address, is not locked out by the stranger's failures
    transport = httpx.AsyncHTTPTransport(local_address="127.0.0.2")
    async with console.client(transport=transport) as elsewhere:
        r = await elsewhere.post("/api/v1/login", json={"user": "dave", "password": password})
        assert r.status_code == 200


async def test_admin_creates_user_and_token_through_api(console):
    async with await console.bearer("admin") as admin:
        r = await admin.post("/api/v1/users", json={"name": "erin", "role": "agent"})
        assert r.status_code == 201
        one_time = r.json()["password"]
        assert (await admin.post("/api/v1/users", json={"name": "erin", "role": "agent"})).status_code == 409
        assert (await admin.post("/api/v1/users", json={"name": "x y", "role": "agent"})).status_code == 400
        assert (await admin.post("/api/v1/users", json={"name": "zed", "role": "root"})).status_code == 400
        r = await admin.post("/api/v1/tokens", json={"name": "grafana", "role": "supervisor"})
        token = r.json()["token"]
    async with console.client() as client:
        assert (await client.post("/api/v1/login", json={"user": "erin", "password": one_time})).status_code == 200
    async with console.client(headers={"authorization": f"Bearer {token}"}) as client:
        assert (await client.get("/api/v1/cdr")).status_code == 200
        assert (await client.get("/api/v1/users")).status_code == 403


async def test_admin_revokes_tokens_deletes_users_and_changes_roles_with_immediate_effect(console):
    victim_token = await console.token("supervisor", "grafana")
    sup_client, _ = await console.logged_in("sue", "supervisor")
    admin_client, admin_csrf = await console.logged_in("root", "admin")
    h = {"x-csrf-token": admin_csrf}
    async with contextlib.aclosing(sup_client), contextlib.aclosing(admin_client):
        assert (await sup_client.get("/api/v1/status")).status_code == 200
        # role change: sue becomes an agent and loses the supervisor routes on her next request
        r = await admin_client.post("/api/v1/users/sue/role", json={"role": "agent"}, headers=h)
        assert r.status_code == 200
        assert (await sup_client.get("/api/v1/status")).status_code == 403
        assert (await admin_client.post("/api/v1/users/sue/role", json={"role": "god"}, headers=h)).status_code == 400
        # deleting sue ends her session at once
        assert (await admin_client.delete("/api/v1/users/sue", headers=h)).status_code == 200
        assert (await sup_client.get("/api/v1/agents")).status_code == 401
        assert (await admin_client.delete("/api/v1/users/sue", headers=h)).status_code == 404
        assert (await admin_client.delete("/api/v1/users/root", headers=h)).status_code == 409
        assert (await admin_client.delete("/api/v1/users/admin")).status_code == 403  # no CSRF token
        # tokens: listed without secrets, revoked by id
        tokens = (await admin_client.get("/api/v1/tokens")).json()
        assert all(set(t) == {"id", "name", "role", "created"} for t in tokens)
        grafana = next(t for t in tokens if t["name"] == "grafana")
        async with console.client(headers={"authorization": f"Bearer {victim_token}"}) as bearer:
            assert (await bearer.get("/api/v1/status")).status_code == 200
            assert (await admin_client.delete(f"/api/v1/tokens/{grafana['id']}", headers=h)).status_code == 200
            assert (await bearer.get("/api/v1/status")).status_code == 401
        assert (await admin_client.delete("/api/v1/tokens/zzzz", headers=h)).status_code == 404

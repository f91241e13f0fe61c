"""The registrar against a raw UDP phone: digest auth, bindings, max_contacts, expiry, persistence."""

from __future__ import annotations

import hashlib
import re
import secrets

import trio

from sip_shell_helpers import header, status_of

USERS = """
[[sip.users]]
name = "1001"
password = "s3cret"
max_contacts = 2

[[sip.users]]
name = "1002"
password = "other"
"""


def _md5(text: str) -> str:
    return hashlib.md5(text.encode()).hexdigest()


def authorization(challenge: str, user: str, password: str, uri: str, method: str = "REGISTER", nc: int = 1) -> str:
    """RFC 2617 digest with qop=auth, computed here independently of the plugin's own code."""
    realm = re.search(r'realm="([^"]*)"', challenge).group(1)
    nonce = re.search(r'nonce="([^"]*)"', challenge).group(1)
    cnonce = secrets.token_hex(4)
    ha1 = _md5(f"{user}:{realm}:{password}")
    ha2 = _md5(f"{method}:{uri}")
    response = _md5(f"{ha1}:{nonce}:{nc:08x}:{cnonce}:auth:{ha2}")
    return (
        f'Digest username="{user}", realm="{realm}", nonce="{nonce}", uri="{uri}", response="{response}", '
        f'algorithm=MD5, qop=auth, nc={nc:08x}, cnonce="{cnonce}"'
    )


class Phone:
    def __init__(self, peer, server_port: int, user: str, *, contact_user: str | None = None) -> None:
        self.peer = peer
        self.server_port = server_port
        self.user = user
        self.contact_user = contact_user or user
        self.call_id = secrets.token_hex(8)
        self.cseq = 0

    def register_message(self, *, expires: int | None = 60, auth: str | None = None, contact: str | None = None, user_agent: str = "TestPhone/1.0") -> bytes:
        self.cseq += 1
        lines = [
            "REGISTER sip:127.0.0.1 SIP/2.0",
            f"Via: SIP/2.0/UDP 127.0.0.1:{self.peer.port};branch=z9hG4bK{secrets.token_hex(6)};rport",
            f"From: <sip:{self.user}@127.0.0.1>;tag={secrets.token_hex(4)}",
            f"To: <sip:{self.user}@127.0.0.1>",
            f"Call-ID: {self.call_id}",
            f"CSeq: {self.cseq} REGISTER",
            f"Contact: {contact or f'<sip:{self.contact_user}@127.0.0.1:{self.peer.port}>'}",
            f"User-Agent: {user_agent}",
            "Max-Forwards: 70",
        ]
        if expires is not None:
            lines.append(f"Expires: {expires}")
        if auth:
            lines.append(f"Authorization: {auth}")
        return ("\r\n".join(lines) + "\r\nContent-Length: 0\r\n\r\n").encode()

    async def register(self, password: str, **kwargs) -> bytes:
        await self.peer.send(self.register_message(**kwargs), self.server_port)
        challenge = await self.peer.receive()
        assert status_of(challenge) == 401, challenge
        auth = authorization(header(challenge, "WWW-Authenticate"), self.user, password, "sip:127.0.0.1")
        await self.peer.send(self.register_message(auth=auth, **kwargs), self.server_port)
        return await self.peer.receive()


def _challenge_shape(reply: bytes) -> tuple:
    """What a scanner can compare between two challenges: status, header names, challenge params."""
    names = tuple(line.split(b":", 1)[0] for line in reply.split(b"\r\n\r\n")[0].split(b"\r\n")[1:])
    challenge = header(reply, "WWW-Authenticate") or ""
    params = tuple(sorted(re.findall(r'(\w+)=', challenge)))
    return status_of(reply), names, params


async def test_register_with_digest_makes_the_user_reachable(sip_engine, udp_peer) -> None:
    async with sip_engine(sip=USERS) as (engine, channel):
        assert not channel.endpoint_reachable("sip:1001")
        phone = Phone(udp_peer, channel.bound[0].port, "1001")
        ok = await phone.register("s3cret")
        assert status_of(ok) == 200
        assert f"127.0.0.1:{udp_peer.port}" in header(ok, "Contact")
        assert channel.endpoint_reachable("sip:1001")
        assert not channel.endpoint_reachable("sip:1002")
        # Unregister: Expires 0 removes the binding.
        assert status_of(await phone.register("s3cret", expires=0)) == 200
        assert not channel.endpoint_reachable("sip:1001")


async def test_wrong_password_and_unknown_user_look_the_same(sip_engine, udp_peer) -> None:
    async with sip_engine(sip=USERS) as (engine, channel):
        async with engine.bus.subscribe("test") as events:
            port = channel.bound[0].port
            shapes = []
            for user, password in (("1001", "wrong"), ("9999", "whatever")):
                phone = Phone(udp_peer, port, user)
                await udp_peer.send(phone.register_message(), port)
                first = await udp_peer.receive()
                auth = authorization(header(first, "WWW-Authenticate"), user, password, "sip:127.0.0.1")
                await udp_peer.send(phone.register_message(auth=auth), port)
                second = await udp_peer.receive()
                assert status_of(second) == 401
                shapes.append((_challenge_shape(first), _challenge_shape(second)))
            assert shapes[0] == shapes[1]
            assert not channel.endpoint_reachable("sip:1001")
            kinds = []
            with trio.fail_after(10):
                while len(kinds) < 2:
                    event = await events.receive()
                    if event.event == "SipSecurityEvent":
                        kinds.append((event.fields["Kind"], event.fields["Username"], event.fields["Detail"]))
            assert kinds == [("auth_failed", "1001", "bad password"), ("auth_failed", "9999", "unknown user")]


async def test_repeated_failures_ban_the_source(sip_engine, udp_peer) -> None:
    security = "rate = 10000\nburst = 10000\nmax_failures_per_source = 3\nban_time = 600\n"
    async with sip_engine(sip=USERS, security=security) as (engine, channel):
        port = channel.bound[0].port
        phone = Phone(udp_peer, port, "1001")
        for _ in range(3):
            await udp_peer.send(phone.register_message(), port)
            challenge = await udp_peer.receive()
            auth = authorization(header(challenge, "WWW-Authenticate"), "1001", "guess", "sip:127.0.0.1")
            await udp_peer.send(phone.register_message(auth=auth), port)
            await udp_peer.receive()
        assert channel.guard.is_banned("127.0.0.1", trio.current_time())
        # Banned: silence, even for the health probe. A message from another source still gets answers.
        from sip_shell_helpers import UdpPeer, options

        await udp_peer.send(options(udp_peer.port), port)
        other = UdpPeer()
        await other.sock.bind(("127.0.0.2", 0))
        other.port = other.sock.getsockname()[1]
        await other.sock.sendto(options(other.port).replace(b"127.0.0.1:", b"127.0.0.2:", 1), ("127.0.0.1", port))
        with trio.fail_after(10):
            data, _ = await other.sock.recvfrom(65536)
        assert status_of(data) == 200
        with trio.move_on_after(0.3):
            late = await udp_peer.sock.recvfrom(65536)
            raise AssertionError(f"a banned source got an answer: {late!r}")
        other.close()


async def test_scanner_user_agent_gets_no_answer(sip_engine, udp_peer) -> None:
    async with sip_engine(sip=USERS) as (engine, channel):
        port = channel.bound[0].port
        phone = Phone(udp_peer, port, "1001")
        await udp_peer.send(phone.register_message(user_agent="friendly-scanner"), port)
        with trio.move_on_after(0.3):
            data = await udp_peer.sock.recvfrom(65536)
            raise AssertionError(f"a scanner got an answer: {data!r}")
        assert channel.statistics()["security"]["dropped_scanner"] == 1


async def test_max_contacts_replaces_the_oldest_binding(sip_engine, udp_peer) -> None:
    async with sip_engine(sip=USERS) as (engine, channel):
        port = channel.bound[0].port
        phone = Phone(udp_peer, port, "1001")
        for n in range(3):
            ok = await phone.register("s3cret", contact=f"<sip:1001-{n}@127.0.0.1:{udp_peer.port}>")
            assert status_of(ok) == 200
        contacts = [b["contact"] for b in channel.registrar.snapshot()]
        assert sorted(contacts) == [f"sip:1001-1@127.0.0.1:{udp_peer.port}", f"sip:1001-2@127.0.0.1:{udp_peer.port}"]


async def test_too_short_expiry_gets_423(sip_engine, udp_peer) -> None:
    async with sip_engine(sip=USERS) as (engine, channel):
        phone = Phone(udp_peer, channel.bound[0].port, "1001")
        reply = await phone.register("s3cret", expires=5)
        assert status_of(reply) == 423
        assert header(reply, "Min-Expires") == "60"


async def test_registration_expires(sip_engine, udp_peer, autojump_clock) -> None:
    async with sip_engine(sip=USERS) as (engine, channel):
        phone = Phone(udp_peer, channel.bound[0].port, "1001")
        assert status_of(await phone.register("s3cret", expires=60)) == 200
        assert channel.endpoint_reachable("sip:1001")
        # Expiry compares with the wall clock too (bindings survive restarts), so the binding is
        # made to look old and its timer is fired on the virtual clock.
        for binding in channel.registrar.bindings["1001"]:
            binding.expires_at -= 61
        await trio.sleep(61)
        assert not channel.endpoint_reachable("sip:1001")


async def test_bindings_survive_a_restart(sip_engine, udp_peer, tmp_path) -> None:
    async with sip_engine(sip=USERS, data_dir=tmp_path) as (engine, channel):
        phone = Phone(udp_peer, channel.bound[0].port, "1001")
        assert status_of(await phone.register("s3cret", expires=600)) == 200
        with trio.fail_after(10):
            while not await engine.store.fetchall("SELECT * FROM sip_contacts"):
                await trio.sleep(0.01)
    async with sip_engine(sip=USERS, data_dir=tmp_path) as (engine, channel):
        assert channel.endpoint_reachable("sip:1001")
        (binding,) = channel.registrar.contacts("1001")
        assert binding.peer.port == udp_peer.port


async def test_qualify_marks_a_silent_phone_unreachable_and_back(sip_engine, udp_peer) -> None:
    from sip_shell_helpers import FAST_TIMERS

    timers = FAST_TIMERS.replace("qualify_interval = 0", "qualify_interval = 0.3\nqualify_timeout = 0.2")
    async with sip_engine(sip=USERS, timers=timers) as (engine, channel):
        phone = Phone(udp_peer, channel.bound[0].port, "1001")
        assert status_of(await phone.register("s3cret")) == 200
        assert channel.endpoint_reachable("sip:1001")
        # The phone ignores the OPTIONS keep-alives: it stops being offered calls.
        with trio.fail_after(10):
            while channel.endpoint_reachable("sip:1001"):
                data = await udp_peer.receive()
                assert data.startswith(b"OPTIONS ")
        # It answers again: reachable again.
        with trio.fail_after(10):
            while not channel.endpoint_reachable("sip:1001"):
                data = await udp_peer.receive()
                if data.startswith(b"OPTIONS "):
                    reply = _answer(data, 200)
                    await udp_peer.send(reply, channel.bound[0].port)


def _answer(request: bytes, status: int) -> bytes:
    head = request.split(b"\r\n\r\n", 1)[0].split(b"\r\n")[1:]
    keep = [line for line in head if line.split(b":", 1)[0].strip().lower() in (b"via", b"from", b"to", b"call-id", b"cseq")]
    return b"SIP/2.0 %d OK\r\n" % status + b"\r\n".join(keep) + b"\r\nContent-Length: 0\r\n\r\n"


async def test_security_events_escape_what_the_attacker_wrote(sip_engine, udp_peer) -> None:
    async with sip_engine(sip=USERS) as (engine, channel):
        async with engine.bus.subscribe("security") as events:
            port = channel.bound[0].port
            phone = Phone(udp_peer, port, "1001")
            await udp_peer.send(phone.register_message(), port)
            challenge = await udp_peer.receive()
            evil = "adm\x1b[2Jin\x07"
            auth = authorization(header(challenge, "WWW-Authenticate"), "1001", "x", "sip:127.0.0.1").replace(
                'username="1001"', f'username="{evil}"'
            )
            await udp_peer.send(phone.register_message(auth=auth), port)
            assert status_of(await udp_peer.receive()) == 401
            with trio.fail_after(10):
                while True:
                    event = await events.receive()
                    if event.event == "SipSecurityEvent" and event.fields["Kind"] == "auth_failed":
                        break
        username = event.fields["Username"]
        assert "\x1b" not in username and "\x07" not in username
        assert username == "adm\\x1b[2Jin\\x07"
        assert event.fields["RemoteAddress"] == "127.0.0.1"

"""Quotes on a real server, real Redis and real Apertium (en<->es): an English buyer asks, a
Spanish supplier quotes, they counter and accept; numbers stay as typed, products are
translated; every state change is a history entry; outsiders and bad fields are refused."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from server.app import SERVICES, create_app
from server.config import Limits, Settings
from server.trade.codes import CURRENCIES, INCOTERMS
from server.trade.quotes import QuoteLimits, line_amount, parse_terms, totals
from tests.support.peers import SECRET, Peer, new_user
from translation.glossary import TradeGlossaries
from translation.translator import Translator


@pytest.fixture(scope="module")
def server_translator(apertium_engine) -> Translator:
    """Apertium en<->es with the shipped trade glossaries, as the server runs it."""
    return Translator([apertium_engine], TradeGlossaries())


VALID = (datetime.now(UTC).date() + timedelta(days=30)).isoformat()


def rfq(cid: str, client_id: str = "r1") -> dict:
    return {
        "conversation_id": cid,
        "client_id": client_id,
        "items": [
            {"product": "stainless steel bolts", "quantity": "500", "unit": "pcs"},
            {"product": "hexagon nuts", "quantity": "1200", "unit": "pcs", "currency": "USD"},
        ],
        "incoterm": "FOB",
        "place": "Shenzhen",
        "lead_time_days": 30,
        "valid_until": VALID,
        "notes": "We need the goods before March.",
    }


def spanish_quote(cid: str, in_reply_to: str | None = None, client_id: str = "q1") -> dict:
    payload = {
        "conversation_id": cid,
        "client_id": client_id,
        "items": [
            {
                "product": "pernos de acero inoxidable",
                "quantity": "500",
                "unit": "pcs",
                "unit_price": "0.35",
                "currency": "USD",
            },
            {
                "product": "tuercas hexagonales",
                "quantity": "1200",
                "unit": "pcs",
                "unit_price": "0.0125",
                "currency": "USD",
            },
        ],
        "incoterm": "FOB",
        "place": "Shenzhen",
        "lead_time_days": 25,
        "valid_until": VALID,
        "payment_terms": "El pago es por adelantado.",
        "notes": "El precio incluye el embalaje.",
    }
    if in_reply_to:
        payload["in_reply_to"] = in_reply_to
    return payload


async def pair(connect) -> tuple[Peer, Peer, str]:
    buyer = await connect(new_user("buyer", "en", "Ann"))
    supplier = await connect(new_user("supplier", "es", "Luis"))
    ack = await buyer.call("conversation.create", {"participants": [supplier.id]})
    return buyer, supplier, ack["conversation"]["id"]


@pytest.fixture
async def direct_room(aiohttp_server, redis_server, tmp_path, server_translator):
    """(quote store, buyer, supplier, conversation id) on a server whose store the test also
    writes to directly, as a process that died between two writes would have left it."""
    app = create_app(
        Settings(data_dir=tmp_path, secret=SECRET), redis_server.url, server_translator
    )
    url = str((await aiohttp_server(app)).make_url("")).rstrip("/")
    buyer = await Peer(new_user("buyer", "en")).connect(url)
    supplier = await Peer(new_user("supplier", "es")).connect(url)
    try:
        ack = await buyer.call("conversation.create", {"participants": [supplier.id]})
        yield app[SERVICES]["realtime"].quotes.store, buyer, supplier, ack["conversation"]["id"]
    finally:
        await buyer.close()
        await supplier.close()


def quote_entry(peer: Peer, action: str, version: int = 1):
    return lambda e: (
        e["message"].get("kind") == "quote"
        and (e["message"]["action"] == action and e["message"]["version"] == version)
    )


async def test_english_buyer_and_spanish_supplier_negotiate_and_accept(connect) -> None:
    buyer, supplier, cid = await pair(connect)

    # The buyer's RFQ: the supplier reads the products and notes in Spanish, numbers untouched.
    asked = await buyer.call("quote.request", rfq(cid))
    assert asked["ok"], asked
    rfq_id = asked["quote_id"]
    got = (await supplier.wait_for("message.new", quote_entry(supplier, "request")))["message"]
    assert got == asked["message"]
    doc = got["quote"]
    assert doc["kind"] == "rfq" and doc["lang"] == "en" and "totals" not in doc
    assert [i["quantity"] for i in doc["items"]] == ["500", "1200"]
    assert "unit_price" not in doc["items"][0] and doc["items"][0]["currency"] is None
    spanish = doc["translations"]["es"]
    assert "pernos" in spanish["items"][0].lower(), spanish
    assert spanish["items"][1] != "hexagon nuts"
    assert "necesitamos" in spanish["notes"].lower(), spanish

    # The supplier's quote, in Spanish, answering the RFQ; the server computes the amounts.
    sent = await supplier.call("quote.send", spanish_quote(cid, rfq_id))
    assert sent["ok"], sent
    qid = sent["quote_id"]
    got = (await buyer.wait_for("message.new", quote_entry(buyer, "send")))["message"]
    doc = got["quote"]
    assert got["sender"]["id"] == supplier.id and got["status"] == "open"
    assert doc["lang"] == "es" and doc["in_reply_to"] == rfq_id
    assert [i["amount"] for i in doc["items"]] == ["175.00", "15.00"]
    assert doc["totals"] == {"USD": "190.00"}
    assert doc["items"][1]["unit_price"] == "0.0125" and doc["items"][1]["quantity"] == "1200"
    assert (doc["incoterm"], doc["place"], doc["lead_time_days"]) == ("FOB", "Shenzhen", 25)
    english = doc["translations"]["en"]
    assert "bolts" in english["items"][0].lower(), english
    assert "nuts" in english["items"][1].lower(), english
    assert "price" in english["notes"].lower(), english
    assert english["payment_terms"] and english["payment_terms"] != doc["payment_terms"]
    assert "es" not in doc["translations"]  # the author's own language is the original

    # The buyer counters with a lower price: version 2, answering version 1.
    counter = spanish_quote(cid, client_id="c1")
    counter["items"][0] |= {"product": "stainless steel bolts", "unit_price": "0.30"}
    counter["notes"] = "Can you ship in two weeks?"
    ack = await buyer.call(
        "quote.respond", {**counter, "quote_id": qid, "action": "counter", "client_id": "c1"}
    )
    assert ack["ok"], ack
    got = (await supplier.wait_for("message.new", quote_entry(supplier, "counter", 2)))["message"]
    assert got["quote"]["answers"] == 1 and got["quote"]["version"] == 2
    assert got["quote"]["totals"] == {"USD": "165.00"}
    assert got["quote"]["lang"] == "en"
    assert "pernos" in got["quote"]["translations"]["es"]["items"][0].lower()

    # The buyer cannot accept their own counter; the supplier accepts it.
    own = await buyer.call(
        "quote.respond",
        {"conversation_id": cid, "quote_id": qid, "action": "accept", "client_id": "a0"},
    )
    assert own["error"]["code"] == "forbidden", own
    accept = {"conversation_id": cid, "quote_id": qid, "action": "accept", "version": 2}
    ack = await supplier.call("quote.respond", {**accept, "client_id": "a1"})
    assert ack["ok"], ack
    got = (await buyer.wait_for("message.new", quote_entry(buyer, "accept", 2)))["message"]
    assert got["sender"]["id"] == supplier.id and got["status"] == "accepted" and got["ts"]
    assert got["quote"] is None

    # Frozen: a second accept, a counter and a decline are refused `conflict`.
    again = await supplier.call("quote.respond", {**accept, "client_id": "a2"})
    assert again["error"]["code"] == "conflict", again
    late = await buyer.call(
        "quote.respond", {**counter, "quote_id": qid, "action": "counter", "client_id": "c2"}
    )
    assert late["error"]["code"] == "conflict", late
    # A retry of the accept itself (same client_id) is answered as before, not refused.
    retry = await supplier.call("quote.respond", {**accept, "client_id": "a1"})
    assert retry["ok"] and retry["duplicate"] and retry["message"] == ack["message"]

    # Both read the whole negotiation in the history, in order, with who and when.
    history = await buyer.call("history.get", {"conversation_id": cid})
    entries = [(m["action"], m["version"], m["sender"]["id"]) for m in history["messages"]]
    assert entries == [
        ("request", 1, buyer.id),
        ("send", 1, supplier.id),
        ("counter", 2, buyer.id),
        ("accept", 2, supplier.id),
    ]
    replay = await supplier.call("conversation.join", {"conversation_id": cid, "since": 0})
    assert replay["messages"] == history["messages"]
    quote = (await buyer.call("quote.get", {"conversation_id": cid, "quote_id": qid}))["quote"]
    assert quote["status"] == "accepted" and quote["version"] == 2
    assert [v["version"] for v in quote["versions"]] == [1, 2]
    assert quote["closed"]["by"]["id"] == supplier.id and quote["closed"]["version"] == 2
    rfq_state = await buyer.call("quote.get", {"conversation_id": cid, "quote_id": rfq_id})
    assert rfq_state["quote"]["replies"] == [qid]
    # The inbox preview is the last entry; unread counts what came after our own counter.
    inbox = (await buyer.call("inbox.list", {}))["conversations"]
    assert inbox[0]["last_message"]["action"] == "accept" and inbox[0]["unread"] == 1


async def test_decline_and_stale_versions(connect) -> None:
    buyer, supplier, cid = await pair(connect)
    qid = (await supplier.call("quote.send", spanish_quote(cid)))["quote_id"]
    counter = {
        k: v for k, v in spanish_quote(cid).items() if k not in ("conversation_id", "client_id")
    }
    ack = await buyer.call(
        "quote.respond",
        {"conversation_id": cid, "client_id": "k", "quote_id": qid, "action": "counter", **counter},
    )
    assert ack["ok"] and ack["message"]["version"] == 2
    stale = await supplier.call(
        "quote.respond",
        {
            "conversation_id": cid,
            "client_id": "s",
            "quote_id": qid,
            "action": "accept",
            "version": 1,
        },
    )
    assert stale["error"]["code"] == "conflict" and "2" in stale["error"]["message"]
    declined = await supplier.call(
        "quote.respond",
        {"conversation_id": cid, "client_id": "d", "quote_id": qid, "action": "decline"},
    )
    assert declined["ok"] and declined["message"]["status"] == "declined"
    got = (await buyer.wait_for("message.new", quote_entry(buyer, "decline", 2)))["message"]
    assert got["sender"]["id"] == supplier.id
    after = await buyer.call(
        "quote.respond",
        {"conversation_id": cid, "client_id": "x", "quote_id": qid, "action": "accept"},
    )
    assert after["error"]["code"] == "conflict"
    # An RFQ can be declined but not accepted.
    rfq_id = (await buyer.call("quote.request", rfq(cid)))["quote_id"]
    refused = await supplier.call(
        "quote.respond",
        {"conversation_id": cid, "client_id": "y", "quote_id": rfq_id, "action": "accept"},
    )
    assert refused["error"]["code"] == "invalid" and refused["error"]["field"] == "action"


async def test_sends_are_idempotent_on_client_id(connect) -> None:
    buyer, supplier, cid = await pair(connect)
    first = await supplier.call("quote.send", spanish_quote(cid))
    again = await supplier.call("quote.send", spanish_quote(cid))
    assert again["ok"] and again["duplicate"] and not first["duplicate"]
    assert again["message"] == first["message"] and again["quote_id"] == first["quote_id"]
    history = await buyer.call("history.get", {"conversation_id": cid})
    assert len(history["messages"]) == 1
    # A client_id used for a chat message is not taken for a quote.
    await supplier.call("message.send", {"conversation_id": cid, "client_id": "m", "text": "Hola"})
    clash = await supplier.call("quote.send", spanish_quote(cid, client_id="m"))
    assert clash["error"]["code"] == "invalid" and clash["error"]["field"] == "client_id"


async def test_outsiders_are_refused(connect) -> None:
    buyer, supplier, cid = await pair(connect)
    qid = (await supplier.call("quote.send", spanish_quote(cid)))["quote_id"]
    outsider = await connect(new_user("buyer", "en"))
    acks = [
        await outsider.call("quote.send", spanish_quote(cid, client_id="o1")),
        await outsider.call("quote.request", rfq(cid, "o2")),
        await outsider.call(
            "quote.respond",
            {"conversation_id": cid, "client_id": "o3", "quote_id": qid, "action": "accept"},
        ),
        await outsider.call("quote.get", {"conversation_id": cid, "quote_id": qid}),
    ]
    assert [a["error"]["code"] for a in acks] == ["forbidden"] * 4, acks
    # A quote of another conversation is not found through this one.
    wrong = await buyer.call("quote.get", {"conversation_id": cid, "quote_id": "q_" + "0" * 16})
    assert wrong["error"]["code"] == "not_found"
    mine = await buyer.call("conversation.create", {"participants": [supplier.id]})
    across = await buyer.call(
        "quote.get", {"conversation_id": mine["conversation"]["id"], "quote_id": qid}
    )
    assert across["error"]["code"] == "not_found"
    quote = await buyer.call("quote.get", {"conversation_id": cid, "quote_id": qid})
    assert quote["quote"]["status"] == "open"


def _with(payload: dict, path: str, value) -> dict:
    """A copy of `payload` with `path` (`items.0.unit_price`, `notes`) set, or removed when
    `value` is ...."""
    copy = {**payload, "items": [dict(i) for i in payload["items"]]}
    target, *rest = path.split(".")
    holder, key = (copy, target) if not rest else (copy["items"][int(rest[0])], rest[1])
    if value is ...:
        holder.pop(key, None)
    else:
        holder[key] = value
    return copy


BAD_FIELDS = [
    ("items", [], "items"),
    ("items", "bolts", "items"),
    ("items.0.product", "", "items[0].product"),
    ("items.0.product", "x" * 201, "items[0].product"),
    ("items.1.quantity", 500, "items[1].quantity"),
    ("items.1.quantity", "0", "items[1].quantity"),
    ("items.1.quantity", "-5", "items[1].quantity"),
    ("items.1.quantity", "1e3", "items[1].quantity"),
    ("items.0.unit_price", 0.35, "items[0].unit_price"),
    ("items.0.unit_price", "0.1234567", "items[0].unit_price"),
    ("items.0.unit_price", ..., "items[0].unit_price"),
    ("items.0.unit", "bucket", "items[0].unit"),
    ("items.0.currency", "usd", "items[0].currency"),
    ("items.0.currency", "XYZ", "items[0].currency"),
    ("items.0.colour", "red", "items[0].colour"),
    ("incoterm", "FOB Shenzhen", "incoterm"),
    ("incoterm", "DAT", "incoterm"),  # Incoterms 2010, replaced by DPU in 2020
    ("lead_time_days", "30", "lead_time_days"),
    ("lead_time_days", -1, "lead_time_days"),
    ("valid_until", "2020-01-01", "valid_until"),
    ("valid_until", "31/12/2030", "valid_until"),
    ("valid_until", "2030-02-30", "valid_until"),
    ("place", "", "place"),
    ("notes", "n" * 2001, "notes"),
    ("payment_terms", 30, "payment_terms"),
    ("in_reply_to", "q_123", "in_reply_to"),
    ("in_reply_to", "q_" + "a" * 16, "in_reply_to"),  # well formed, but no such quote
]


@pytest.mark.parametrize(("path", "value", "field"), BAD_FIELDS)
async def test_bad_fields_are_named(connect, path, value, field) -> None:
    buyer, supplier, cid = await pair(connect)
    ack = await supplier.call("quote.send", _with(spanish_quote(cid), path, value))
    assert ack["ok"] is False and ack["error"]["code"] == "invalid", ack
    assert ack["error"]["field"] == field and field in ack["error"]["message"], ack
    assert (await buyer.call("history.get", {"conversation_id": cid}))["messages"] == []


async def test_request_and_respond_fields_are_checked(connect) -> None:
    buyer, supplier, cid = await pair(connect)
    priced = _with(rfq(cid), "items.0.unit_price", "1.00")
    ack = await buyer.call("quote.request", priced)
    assert ack["error"]["field"] == "items[0].unit_price", ack
    qid = (await supplier.call("quote.send", spanish_quote(cid)))["quote_id"]
    base = {"conversation_id": cid, "client_id": "z", "quote_id": qid}
    cases = [
        ({**base, "action": "haggle"}, "action"),
        ({**base, "action": "accept", "notes": "fine"}, "notes"),
        ({**base, "action": "counter"}, "items"),
        ({**base, "quote_id": "Q1", "action": "accept"}, "quote_id"),
    ]
    for payload, field in cases:
        ack = await buyer.call("quote.respond", payload)
        assert ack["error"]["code"] == "invalid" and ack["error"]["field"] == field, ack
    unknown = await buyer.call("quote.respond", {**base, "action": "accept", "price": "1"})
    assert unknown["error"]["code"] == "invalid" and "price" in unknown["error"]["message"]


async def test_quotes_are_rate_limited_like_messages(
    aiohttp_server, redis_server, tmp_path, server_translator
) -> None:
    limits = Limits(rate_per_second=0.01, rate_burst=6)
    app = create_app(
        Settings(data_dir=tmp_path, secret=SECRET, limits=limits),
        redis_server.url,
        server_translator,
    )
    url = str((await aiohttp_server(app)).make_url("")).rstrip("/")
    buyer = await Peer(new_user("buyer", "en")).connect(url)
    supplier = await Peer(new_user("supplier", "es")).connect(url)
    try:
        ack = await buyer.call("conversation.create", {"participants": [supplier.id]})
        cid = ack["conversation"]["id"]
        acks = [
            await supplier.call("quote.send", spanish_quote(cid, client_id=f"b{n}"))
            for n in range(8)
        ]
        codes = [a["error"]["code"] if not a["ok"] else "ok" for a in acks]
        assert codes == ["ok"] * 6 + ["rate_limited"] * 2, codes
    finally:
        await buyer.close()
        await supplier.close()


def test_amounts_are_exact_and_rounded_to_the_currencys_minor_units() -> None:
    assert line_amount("3", "0.1", "USD") == "0.30"  # 0.30000000000000004 as floats
    assert line_amount("3", "333.335", "JPY") == "1000"  # 0 decimals, half up
    assert line_amount("1", "0.0005", "BHD") == "0.001"  # 3 decimals
    assert line_amount("999999999999.999", "999999.999999", "USD") == str(
        (Decimal("999999999999.999") * Decimal("999999.999999")).quantize(Decimal("0.01"))
    )
    items = [
        {"currency": "EUR", "amount": "0.10"},
        {"currency": "USD", "amount": "0.20"},
        {"currency": "EUR", "amount": "0.20"},
    ]
    assert totals(items) == {"EUR": "0.30", "USD": "0.20"}
    assert len(INCOTERMS) == 11 and "DPU" in INCOTERMS and "DAT" not in INCOTERMS
    assert CURRENCIES["USD"] == 2 and CURRENCIES["KWD"] == 3 and CURRENCIES["KRW"] == 0
    terms = parse_terms(
        {
            "items": [{"product": "p", "quantity": "2", "unit": "kg", "unit_price": "1.005",
                       "currency": "EUR"}],
            "incoterm": "EXW", "lead_time_days": 0, "valid_until": VALID,
        },
        True,
        QuoteLimits(),
    )  # fmt: skip
    assert terms["items"][0]["amount"] == "2.01" and terms["totals"] == {"EUR": "2.01"}
    assert terms["place"] is None and terms["notes"] is None


async def test_a_retry_after_a_crash_between_state_and_history_stores_the_entry_once(
    direct_room,
) -> None:
    """The quote's state is written first, its history entry second: a process that died in
    between leaves the entry to the client's retry (same client_id), which stores it once."""
    quotes, buyer, supplier, cid = direct_room
    # The first attempt stored the quote and died before its entry.
    payload = spanish_quote(cid, client_id="crash1")
    terms = parse_terms(payload, True, QuoteLimits())
    version = {"quote_id": "q_00000000000000aa", "version": 1, "at": "2026-12-03T00:00:00Z",
               "lang": "es", "kind": "quote", **terms, "translations": {}}  # fmt: skip
    created, qid = await quotes.create(cid, supplier.id, "crash1", "quote", version, None)
    assert created and qid == "q_00000000000000aa"
    retry = await supplier.call("quote.send", payload)
    assert retry["ok"] and retry["quote_id"] == qid, retry
    assert retry["message"]["quote"] == version  # the stored version, not a new one
    again = await supplier.call("quote.send", payload)
    assert again["duplicate"] and again["message"] == retry["message"]

    # The accept was applied and the process died before its entry: the retry posts it.
    entry = {"kind": "quote", "quote_id": qid, "action": "accept", "version": 1,
             "status": "accepted", "quote": None}  # fmt: skip
    closed = {"action": "accept", "version": 1, "by": buyer.identity.public(), "at": "now"}
    outcome, _ = await quotes.respond(qid, buyer.id, "acc1", "accept", 1, entry, None, closed, 50)
    assert outcome == "ok"
    accept = {"conversation_id": cid, "client_id": "acc1", "quote_id": qid, "action": "accept"}
    ack = await buyer.call("quote.respond", accept)
    assert ack["ok"] and ack["duplicate"] and ack["message"]["status"] == "accepted", ack
    history = (await buyer.call("history.get", {"conversation_id": cid}))["messages"]
    assert [(m["action"], m["sender"]["id"]) for m in history] == [
        ("send", supplier.id),
        ("accept", buyer.id),
    ]
    assert (await supplier.wait_for("message.new", quote_entry(supplier, "accept")))["message"]


async def test_an_expired_quote_cannot_be_accepted(direct_room) -> None:
    quotes, buyer, supplier, cid = direct_room
    terms = parse_terms(spanish_quote(cid), True, QuoteLimits())
    yesterday = (datetime.now(UTC).date() - timedelta(days=1)).isoformat()
    version = {"quote_id": "q_00000000000000bb", "version": 1, "at": "2026-01-01T00:00:00Z",
               "lang": "es", "kind": "quote", "by": supplier.identity.public(),
               **terms, "valid_until": yesterday, "translations": {}}  # fmt: skip
    await quotes.create(cid, supplier.id, "old", "quote", version, None)
    base = {"conversation_id": cid, "quote_id": "q_00000000000000bb"}
    late = await buyer.call("quote.respond", {**base, "client_id": "a", "action": "accept"})
    assert late["error"]["code"] == "conflict" and yesterday in late["error"]["message"]
    # Declining (or countering) an expired quote is still possible.
    ack = await buyer.call("quote.respond", {**base, "client_id": "d", "action": "decline"})
    assert ack["ok"] and ack["message"]["status"] == "declined"

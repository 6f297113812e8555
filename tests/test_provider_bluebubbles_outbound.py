"""BlueBubbles outbound beyond plain texts (issue 17): quoted replies, tapbacks, read receipts
and history, against the loopback server.

Request shapes from BlueBubblesApp/bluebubbles-server:
- packages/server/src/server/api/http/api/v1/validators/messageValidator.ts — sendTextRules
  (selectedMessageGuid, partIndex; a reply makes the send a Private API one), sendReactionRules
  (chatGuid, selectedMessageGuid, reaction in MessageInterface.possibleReactions), queryBodyRules
  (with, where, sort ASC|DESC, after, offset, limit <= 1000);
- packages/server/src/server/api/http/api/v1/httpRoutes.ts — POST message/react and POST
  chat/:guid/read behind PrivateApiMiddleware; POST message/query;
- packages/server/src/server/api/http/api/v1/middleware/privateApiMiddleware.ts — the error
  when the Private API is off;
- packages/server/src/server/api/http/api/v1/routers/messageRouter.ts — query's answer
  `{data, metadata: {offset, limit, total, count}}`."""
from datetime import datetime, timezone

import pytest

from accounts.models import Account
from accounts.providers import get_provider
from accounts.providers.base import InboundMessage, ProviderError
from tests.standins.bluebubbles_standin import BlueBubblesStandIn

BB = get_provider("bluebubbles")
CHAT = "iMessage;-;+14155550123"


@pytest.fixture
def mac():
    with BlueBubblesStandIn(password="mac-password") as standin:
        yield standin


def account_of(mac, method="private-api") -> Account:
    return Account(credentials={"server_url": mac.url, "password": "mac-password"}, config={"send_method": method})


def test_a_reply_quotes_its_message_through_the_private_api(mac):
    sent = BB.send(account_of(mac), to="+14155550123", text="That one, yes", idempotency_key="wsm-1", reply_to="ORIGINAL-1")
    body = mac.received("POST", "/api/v1/message/text")[0].json
    assert body == {"chatGuid": CHAT, "message": "That one, yes", "tempGuid": "wsm-1", "method": "private-api",
                    "selectedMessageGuid": "ORIGINAL-1", "partIndex": 0}
    assert sent.provider_id == mac.sent[0]["guid"] and mac.sent[0]["threadOriginatorGuid"] == "ORIGINAL-1"


def test_with_applescript_a_reply_goes_as_a_plain_message(mac):
    BB.send(account_of(mac, "apple-script"), to="+14155550123", text="That one", idempotency_key="wsm-2", reply_to="ORIGINAL-1")
    body = mac.received("POST", "/api/v1/message/text")[0].json
    assert "selectedMessageGuid" not in body and body["method"] == "apple-script"


@pytest.mark.parametrize("emoji, name", [("❤️", "love"), ("❤", "love"), ("👍🏽", "like"), ("👎", "dislike"), ("😂", "laugh"),
                                         ("‼️", "emphasize"), ("❓", "question")])
def test_react_sends_the_tapback_named_by_the_emoji(mac, emoji, name):
    mac.history.append(mac.message(guid="THEIRS-1", text="Is it in stock?"))
    BB.react(account_of(mac), to="+14155550123", target_id="THEIRS-1", target_from_me=False, emoji=emoji)
    [call] = mac.received("POST", "/api/v1/message/react")
    assert call.json == {"chatGuid": CHAT, "selectedMessageGuid": "THEIRS-1", "reaction": name, "partIndex": 0}


def test_removing_our_reaction_removes_the_tapback_we_put_there(mac):
    mac.history.append(mac.message(guid="THEIRS-1"))
    account = account_of(mac)
    BB.react(account, to="+14155550123", target_id="THEIRS-1", target_from_me=False, emoji="😂")
    BB.react(account, to="+14155550123", target_id="THEIRS-1", target_from_me=False, emoji="")
    assert [c.json["reaction"] for c in mac.received("POST", "/api/v1/message/react")] == ["laugh", "-laugh"]
    lookup = mac.received("POST", "/api/v1/message/query")[0].json
    assert lookup["chatGuid"] == CHAT and lookup["sort"] == "DESC" and lookup["limit"] == 1


def test_removing_when_we_never_reacted_sends_nothing(mac):
    mac.history.append(mac.message(guid="THEIRS-1"))
    BB.react(account_of(mac), to="+14155550123", target_id="THEIRS-1", target_from_me=False, emoji="")
    assert mac.received("POST", "/api/v1/message/react") == []


def test_an_emoji_imessage_has_no_tapback_for_is_refused_plainly(mac):
    with pytest.raises(ProviderError) as refused:
        BB.react(account_of(mac), to="+14155550123", target_id="T", target_from_me=False, emoji="🎉")
    assert not refused.value.transient and "❤️ 👍 👎 😂 ‼️ ❓" in str(refused.value)
    assert mac.requests == []


def test_reactions_and_read_receipts_need_the_private_api_and_say_so(mac):
    account = account_of(mac, "apple-script")
    for attempt in (lambda: BB.react(account, to="+14155550123", target_id="T", target_from_me=False, emoji="👍"),
                    lambda: BB.mark_read(account, to="+14155550123", provider_ids=["T"])):
        with pytest.raises(ProviderError) as refused:
            attempt()
        assert not refused.value.transient and "Private API" in str(refused.value)
    assert mac.requests == []  # nothing was tried
    assert BB.supports_reactions and BB.supports_read_receipts and BB.supports_history


def test_a_server_whose_private_api_is_off_answers_with_its_reason(mac):
    mac.private_api = False
    with pytest.raises(ProviderError) as failed:
        BB.mark_read(account_of(mac), to="+14155550123", provider_ids=["T"])
    assert "iMessage Private API is not enabled!" in str(failed.value)


def test_mark_read_marks_the_chat_read(mac):
    BB.mark_read(account_of(mac), to="+14155550123", provider_ids=["A", "B"])
    BB.mark_read(account_of(mac), to="iMessage;+;chat42", provider_ids=["C"])
    assert mac.read_chats == [CHAT, "iMessage;+;chat42"]
    assert mac.received("POST", "/api/v1/chat/iMessage%3B-%3B%2B14155550123/read")


def test_history_reads_every_page_oldest_first_as_history(mac, monkeypatch):
    import accounts.providers.bluebubbles.provider as provider

    monkeypatch.setattr(provider, "HISTORY_PAGE", 2)
    since = datetime(2025, 1, 1, tzinfo=timezone.utc)
    ms = int(since.timestamp() * 1000)
    mac.history += [
        mac.message(guid="OLD", text="before", date_created=ms - 1),
        mac.message(guid="H1", text="Hello?", date_created=ms + 1000),
        mac.message(guid="H2", text="Hi! How can I help", is_from_me=True, date_created=ms + 2000),
        mac.message(guid="H3", text="", associated_guid="p:0/H1", associated_type="like", date_created=ms + 3000),
        mac.message(guid="H4", text="In the group", address="+16505550199", chat="iMessage;+;chat7", date_created=ms + 4000),
        mac.message(guid="H5", text=None, chat="iMessage;+;chat7", item_type=3, date_created=ms + 5000),
    ]
    found = BB.history(account_of(mac, "apple-script"), since=since)
    assert [m.provider_id for m in found] == ["H1", "H2", "H4"]  # tapbacks and system items are not messages
    assert all(isinstance(m, InboundMessage) and m.history for m in found)
    assert [(m.from_me, m.from_phone, m.group_id) for m in found] == [
        (False, "+14155550123", ""), (True, "+14155550123", ""), (False, "+16505550199", "iMessage;+;chat7")]
    pages = [r.json for r in mac.received("POST", "/api/v1/message/query")]
    assert [p["offset"] for p in pages] == [0, 2, 4]
    assert pages[0] == {"after": ms, "with": ["chat", "handle", "attachment"], "sort": "ASC", "limit": 2, "offset": 0}


def test_history_stops_after_its_page_bound(mac, monkeypatch):
    import accounts.providers.bluebubbles.provider as provider

    monkeypatch.setattr(provider, "HISTORY_PAGE", 1)
    monkeypatch.setattr(provider, "HISTORY_MAX_PAGES", 3)
    mac.history += [mac.message(guid=f"M{i}", date_created=1_800_000_000_000 + i) for i in range(10)]
    found = BB.history(account_of(mac), since=datetime(2026, 1, 1, tzinfo=timezone.utc))
    assert [m.provider_id for m in found] == ["M0", "M1", "M2"]
    assert len(mac.received("POST", "/api/v1/message/query")) == 3

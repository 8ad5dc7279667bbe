"""Media by platform id and by URL, WhatsApp templates with parameters, and the kinds a channel
does not carry, through the real gateway to the fake platforms: the exact platform call, the
reply ``sent``; or a refusal at once with the capability data's reason and no platform call.
"""

from __future__ import annotations

from typing import Any

import pytest

from gateway.client.replies import MessageOut
from gateway.envelope import (
    Content,
    Delete,
    Location,
    Media,
    Template,
    TemplateComponent,
    TemplateParameter,
    Text,
)
from tests.gateway.outbound.kinds_support import (
    QUICK,
    open_conversation,
    reply_with,
    requests_of,
)
from tests.gateway.outbound.support import CUSTOMERS, account_of, outbound_gateway

pytestmark = pytest.mark.timeout(120)
PDF = "https://files.example.com/invoices/A-42.pdf"
JPG = "https://files.example.com/photos/parcel.jpg"
MP4 = "https://files.example.com/clips/howto.mp4"


def _attachment(kind: str, **payload: Any) -> dict[str, Any]:
    return {"attachment": {"type": kind, "payload": payload}}


# platform -> [(content, the call's body or a subset of it, Telegram method)]
MEDIA: dict[str, list[tuple[Media, dict[str, Any], str]]] = {
    "whatsapp": [
        (Media(media_kind="image", media_ref="1013859600285441", caption="your parcel"),
         {"type": "image", "image": {"id": "1013859600285441", "caption": "your parcel"}}, ""),
        (Media(media_kind="document", url=PDF, filename="A-42.pdf", caption="invoice"),
         {"type": "document",
          "document": {"link": PDF, "filename": "A-42.pdf", "caption": "invoice"}}, ""),
        (Media(media_kind="voice", media_ref="2202004080"),
         {"type": "audio", "audio": {"id": "2202004080"}}, ""),
    ],
    "messenger": [
        (Media(media_kind="image", url=JPG),
         {"message": _attachment("image", url=JPG, is_reusable=True)}, ""),
        (Media(media_kind="document", media_ref="1857777774821032"),
         {"message": _attachment("file", attachment_id="1857777774821032")}, ""),
    ],
    "instagram": [
        (Media(media_kind="image", url=JPG),
         {"message": _attachment("image", url=JPG, is_reusable=True)}, ""),
        (Media(media_kind="video", media_ref="1857777774821099"),
         {"message": _attachment("video", attachment_id="1857777774821099")}, ""),
        (Media(media_kind="sticker", media_ref="like_heart"),
         {"message": {"attachment": {"type": "like_heart"}}}, ""),
    ],
    "telegram": [
        (Media(media_kind="image", url=JPG, caption="your parcel"),
         {"photo": JPG, "caption": "your parcel"}, "sendPhoto"),
        (Media(media_kind="document", media_ref="BQACAgIAAxkBAAIBZ2X"),
         {"document": "BQACAgIAAxkBAAIBZ2X"}, "sendDocument"),
        (Media(media_kind="voice", media_ref="AwACAgIAAxkBAAIBaGX"),
         {"voice": "AwACAgIAAxkBAAIBaGX"}, "sendVoice"),
        (Media(media_kind="video", url=MP4), {"video": MP4}, "sendVideo"),
    ],
}


def _sent(out: MessageOut) -> None:
    assert (out.state, out.error_code, out.attempts) == ("sent", None, 1), out
    assert out.platform_message_id


def _refused(out: MessageOut, reason: str) -> None:
    assert (out.state, out.delivery, out.error_code, out.attempts) == (
        "failed", "failed", "refused", 1), out
    assert out.reason == reason


@pytest.mark.parametrize("platform", sorted(MEDIA))
async def test_media_by_id_and_by_url(db_url: str, platform: str) -> None:
    async with outbound_gateway(db_url, settings=QUICK) as (gw, fakes, _):
        agent, inbound = await open_conversation(gw, fakes, platform)
        calls = requests_of(fakes, platform)
        for media, body, method in MEDIA[platform]:
            before = len(calls)
            out = await reply_with(agent, inbound, media)
            _sent(out)
            (call,) = calls[before:]
            assert call.status == 200
            expected = body
            if platform == "messenger":  # Messenger sends carry our mark (echoes tell it)
                marked = {**body["message"], "metadata": f"unigate:{out.envelope_id}"}
                expected = {"message": marked}
            assert {key: call.body.get(key) for key in expected} == expected
            assert call.path.endswith(f"/{method}" if method else "/messages")
            if platform in ("messenger", "instagram"):
                assert call.body["recipient"] == {"id": CUSTOMERS[platform]}
            if platform == "whatsapp":
                assert call.body["to"] == CUSTOMERS[platform]


async def test_x_media_by_uploaded_id_and_not_by_url(db_url: str) -> None:
    async with outbound_gateway(db_url) as (gw, fakes, _):
        agent, inbound = await open_conversation(gw, fakes, "x")
        media_id = fakes.x.upload_media(account_of(gw, "x"))
        _sent(await reply_with(agent, inbound, Media(media_kind="image", media_ref=media_id,
                                                     caption="your parcel")))
        (call,) = fakes.x.requests
        assert call.path == f"/2/dm_conversations/with/{CUSTOMERS['x']}/messages"
        assert call.body == {"attachments": [{"media_id": media_id}], "text": "your parcel"}
        out = await reply_with(agent, inbound, Media(media_kind="image", url=JPG))
        _refused(out, "X DM media must be uploaded first: a media_id is required")
        assert len(fakes.x.requests) == 1


WRONG_MEDIA: list[tuple[str, Media, str]] = [
    ("whatsapp", Media(media_kind="gif", url=JPG),
     "media kind 'gif' is not supported on this channel"),
    ("whatsapp", Media(media_kind="image", url=JPG, mime="image/gif"),
     "mime type not accepted for image"),
    ("messenger", Media(media_kind="image", url=JPG, caption="look"),
     "media captions are not supported on this channel; send a text"),
    ("instagram", Media(media_kind="document", url=PDF),
     "media kind 'document' is not supported on this channel"),
    ("x", Media(media_kind="file", media_ref="1"),
     "media kind 'file' is not supported on this channel"),
    ("telegram", Media(media_kind="voice", url=MP4, mime="audio/mpeg"),
     "mime type not accepted for voice"),
    ("telegram", Media(media_kind="image"),
     "media has neither a platform media id nor a url"),
]


@pytest.mark.parametrize(("platform", "media", "reason"), WRONG_MEDIA)
async def test_media_the_channel_refuses(db_url: str, platform: str, media: Media,
                                         reason: str) -> None:
    async with outbound_gateway(db_url) as (gw, fakes, _):
        agent, inbound = await open_conversation(gw, fakes, platform)
        _refused(await reply_with(agent, inbound, media), reason)
        assert requests_of(fakes, platform) == []


ORDER_UPDATE = Template(name="order_update", language="en_US", components=[
    TemplateComponent(type="header", parameters=[TemplateParameter(type="image", url=JPG)]),
    TemplateComponent(type="body", parameters=[
        TemplateParameter(type="text", text="Ada"), TemplateParameter(type="text", text="A-42")]),
    TemplateComponent(type="button", sub_type="quick_reply", index=0, parameters=[
        TemplateParameter(type="payload", payload="TRACK_A42")]),
])


async def test_a_whatsapp_template_with_parameters(db_url: str) -> None:
    async with outbound_gateway(db_url) as (gw, fakes, _):
        agent, inbound = await open_conversation(gw, fakes, "whatsapp")
        _sent(await reply_with(agent, inbound, ORDER_UPDATE))
        (call,) = fakes.graph.requests
        assert call.body["type"] == "template"
        assert call.body["template"] == {
            "name": "order_update", "language": {"code": "en_US"}, "components": [
                {"type": "header", "parameters": [{"type": "image", "image": {"link": JPG}}]},
                {"type": "body", "parameters": [{"type": "text", "text": "Ada"},
                                                {"type": "text", "text": "A-42"}]},
                {"type": "button", "sub_type": "quick_reply", "index": 0,
                 "parameters": [{"type": "payload", "payload": "TRACK_A42"}]},
            ]}


UNSUPPORTED: list[tuple[str, Content, str]] = [
    ("messenger", ORDER_UPDATE, "template is rejected on this channel"),
    ("instagram", ORDER_UPDATE, "template is rejected on this channel"),
    ("telegram", ORDER_UPDATE, "template is unsupported on this channel"),
    ("x", ORDER_UPDATE, "template is unsupported on this channel"),
    ("whatsapp", Delete(target="wamid.X"), "delete is unsupported on this channel"),
    ("instagram", Location(latitude=52.52, longitude=13.4),
     "location is unsupported on this channel"),
    ("x", Location(latitude=52.52, longitude=13.4), "location is unsupported on this channel"),
]


@pytest.mark.parametrize(("platform", "content", "reason"), UNSUPPORTED)
async def test_kinds_the_channel_does_not_carry(db_url: str, platform: str, content: Content,
                                                reason: str) -> None:
    async with outbound_gateway(db_url) as (gw, fakes, _):
        agent, inbound = await open_conversation(gw, fakes, platform)
        _refused(await reply_with(agent, inbound, content), reason)
        assert requests_of(fakes, platform) == []
        # the conversation still works: the next reply goes out
        _sent(await reply_with(agent, inbound, Text(text="still here")))

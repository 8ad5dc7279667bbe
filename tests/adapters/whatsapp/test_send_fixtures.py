"""Send-side files of ../shared/fixtures/platforms/whatsapp/: requests, responses, errors.

- ``meta_openapi_send_send_*``: Meta's own request bodies. Each is read back into an outbound
  envelope (``envelope_from_body``) and rebuilt through ``build_send``; the rebuilt body must
  equal Meta's.
- ``*_send_response_*``: success answers through ``parse_send_response``.
- ``courier_send_error_*`` (with the HTTP status courier mocked, per SOURCES.md) and
  ``pywa_error_object_*``: classified into the SendError tree.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import msgspec
import pytest

from adapters.errors import AuthExpired, Permanent, RateLimited, Retryable, WindowClosed
from adapters.whatsapp.outbound import envelope_from_body, infer_type
from tests.adapters.support import load
from tests.adapters.whatsapp.support import ACCESS_TOKEN, ACCOUNT, adapter

# request file -> (content kind, a few fields of the envelope read back from it)
REQUESTS: dict[str, tuple[str, dict[str, Any]]] = {
    "audio_message_by_id": ("media", {"media_kind": "audio", "media_ref": "<AUDIO_OBJECT_ID>"}),
    "audio_message_by_url": ("media", {"url": "<http(s)://audio-url>"}),
    "catalog_message": ("interactive", {"style": "catalog_message"}),
    "catalog_template_message": ("template", {"name": "intro_catalog_offer"}),
    "contact_message": ("contacts", {}),
    "document_message_by_id": ("media", {"filename": "<DOCUMENT_FILENAME>"}),
    "document_message_by_url": ("media", {"caption": "<DOCUMENT-CAPTION-TEXT>"}),
    "draft_flow_by_id": ("interactive", {"style": "flow", "header": "Not shown in draft mode"}),
    "draft_flow_by_name": ("interactive", {"style": "flow"}),
    "flow_template_message": ("template", {"name": "<TEMPLATE_NAME>"}),
    "image_message_by_id": ("media", {"media_ref": "<IMAGE_OBJECT_ID>"}),
    "image_message_by_url": ("media", {"url": "http(s)://image-url"}),
    "list_message": ("interactive", {"style": "list", "list_label": "<BUTTON_TEXT>"}),
    "location_message": ("location", {"name": "META HQ", "latitude": 37.758056}),
    "message_template_interactive": ("template", {"name": "template-name"}),
    "message_template_media": ("template", {"language": "language-and-locale-code"}),
    "message_template_text": ("template", {}),
    "multi_product_message": ("interactive", {"style": "product_list"}),
    "order_details_message": ("interactive", {"style": "order_details"}),
    "order_status_message": ("interactive", {"style": "order_status"}),
    "published_flow_by_id": ("interactive", {"style": "flow", "footer": "<FOOTER_TEXT>"}),
    "published_flow_by_name": ("interactive", {"style": "flow"}),
    "reply_button": ("interactive", {"style": "buttons", "body": "<BUTTON_TEXT>"}),
    "reply_to_audio_message_by_id": ("media", {}),
    "reply_to_audio_message_by_url": ("media", {}),
    "reply_to_contact_message": ("contacts", {}),
    "reply_to_document_message_by_id": ("media", {}),
    "reply_to_document_message_by_url": ("media", {}),
    "reply_to_image_message_by_id": ("media", {}),
    "reply_to_image_message_by_url": ("media", {}),
    "reply_to_list_message": ("interactive", {"style": "list"}),
    "reply_to_location_message": ("location", {}),
    "reply_to_sticker_message_by_id": ("media", {"media_kind": "sticker"}),
    "reply_to_sticker_message_by_url": ("media", {"media_kind": "sticker"}),
    "reply_to_text_message": ("text", {"text": "<TEXT_MSG_CONTENT>", "preview_url": False}),
    "reply_to_video_message_by_id": ("media", {"media_kind": "video"}),
    "reply_to_video_message_by_url": ("media", {"media_kind": "video"}),
    "reply_with_reaction_message": ("reaction", {"emoji": "😀", "target": "wamid.HBgLM..."}),
    "sample_issue_resolution_template": ("template", {"name": "sample_issue_resolution"}),
    "sample_shipping_confirmation_template": ("template", {}),
    "sample_text_message": ("template", {}),
    "single_product_message": ("interactive", {"style": "product"}),
    "sticker_message_by_id": ("media", {"media_kind": "sticker"}),
    "sticker_message_by_url": ("media", {"media_kind": "sticker"}),
    "test_message": ("template", {"name": "hello_world", "language": "en_US"}),
    "text_message": ("text", {"text": "text-message-content"}),
    "text_message_with_preview_url": ("text", {"preview_url": True}),
    "typing_indicator_and_read_receipt": ("typing", {"target":
                                          "wamid.HBgLMTY1MDM4Nzk0MzkVAgASGBQzQUYzMjEzNDM2RTZGQ0MzMDJBRgA="}),
    "video_message_by_id": ("media", {"media_kind": "video", "caption": "<VIDEO_CAPTION_TEXT>"}),
    "video_message_by_url": ("media", {}),
}
PREFIX = "meta_openapi_send_send_"
# courier mocked these HTTP statuses (SOURCES.md) -> the class we must raise
COURIER_ERRORS = {
    "0": (403, AuthExpired),
    "130429": (403, RateLimited),
    "131009": (400, Permanent),
    "131053": (400, Retryable),
    "131056": (403, RateLimited),
    "368": (403, Permanent),
    "613": (429, RateLimited),
}
ERROR_OBJECTS = {"131047": WindowClosed, "131053": Retryable, "190": AuthExpired}


@pytest.fixture(scope="module")
def wa_dir(platform_fixtures_root: Path) -> Path:
    return platform_fixtures_root / "whatsapp"


def test_every_whatsapp_file_is_classified(wa_dir: Path) -> None:
    unclassified = []
    for path in sorted(wa_dir.glob("*.json")):
        name = path.name
        if load(path).get("object") == "whatsapp_business_account":
            continue  # webhooks: test_platform_fixtures.py
        known = (
            (name.startswith(PREFIX) and name[len(PREFIX):-5] in REQUESTS)
            or name.startswith(("meta_openapi_send_response_", "meta_openapi_media_url"))
            or (name.startswith("courier_send_error_") and name[19:-5] in COURIER_ERRORS)
            or (name.startswith("pywa_error_object_") and name[18:-5] in ERROR_OBJECTS)
        )
        if not known:
            unclassified.append(name)
    assert unclassified == []
    assert len(list(wa_dir.glob(PREFIX + "*.json"))) == len(REQUESTS)


def _normalise(body: dict[str, Any]) -> dict[str, Any]:
    """Meta's examples omit defaults the API fills in; we always send them."""
    body = dict(body)
    if "status" not in body:
        body.setdefault("recipient_type", "individual")
        body.setdefault("type", infer_type(body))
    return body


@pytest.mark.parametrize("stem", sorted(REQUESTS))
def test_send_request_round_trips_through_build_send(wa_dir: Path, stem: str) -> None:
    original = load(wa_dir / f"{PREFIX}{stem}.json")
    envelope = envelope_from_body(original, ACCOUNT)
    kind, fields = REQUESTS[stem]
    assert envelope.kind == kind and envelope.direction == "out"
    for key, value in fields.items():
        assert getattr(envelope.content, key) == value, key
    if "context" in original:
        assert envelope.reply_to == original["context"]["message_id"]
    # survives the wire (the sealed plaintext is the msgpack encoding)
    from gateway.envelope import decode_msgpack, encode_msgpack

    envelope = decode_msgpack(encode_msgpack(envelope))
    request = adapter().build_send(envelope, ACCOUNT)
    assert request.method == "POST"
    assert request.url == "https://graph.facebook.com/v23.0/1234567890/messages"
    assert request.headers["Authorization"] == f"Bearer {ACCESS_TOKEN}"
    built = dict(request.json)
    if "status" not in built:
        assert built.pop("biz_opaque_callback_data") == envelope.id
    assert built == _normalise(original)
    assert msgspec.json.decode(request.body()) == built | (
        {} if "status" in built else {"biz_opaque_callback_data": envelope.id}
    )


@pytest.mark.parametrize(
    ("name", "wamid", "wa_id"),
    [
        ("meta_openapi_send_response_example_response.json",
         "wamid.HBgLMTY1MDM4Nzk0MzkVAgARGBJCOTY3NDc0NDFDRUI3NTA0Q0UA", "16505551234"),
        ("meta_openapi_send_response_send_list_message.json", "wamid.ID", "<WHATSAPP_ID>"),
        ("meta_openapi_send_response_typing_indicator_and_read_receipt.json", None, None),
    ],
)
def test_send_responses(wa_dir: Path, name: str, wamid: str | None, wa_id: str | None) -> None:
    result = adapter().parse_send_response(200, {}, (wa_dir / name).read_bytes())
    assert (result.platform_message_id, result.recipient_id) == (wamid, wa_id)
    assert result.status == "accepted"


def test_media_url_response_shape(wa_dir: Path) -> None:
    from adapters.whatsapp.adapter import _MediaInfo

    info = msgspec.json.decode((wa_dir / "meta_openapi_media_url_response.json").read_bytes(),
                               type=_MediaInfo)
    assert (info.url, info.mime_type, info.sha256) == ("<URL>", "image/jpeg", "<HASH>")


@pytest.mark.parametrize("code", sorted(COURIER_ERRORS))
def test_courier_send_errors_are_classified(wa_dir: Path, code: str) -> None:
    status, expected = COURIER_ERRORS[code]
    body = (wa_dir / f"courier_send_error_{code}.json").read_bytes()
    with pytest.raises(expected) as info:
        adapter().parse_send_response(status, {}, body)
    assert type(info.value) is expected
    assert info.value.code == int(code) and info.value.platform_status == status
    assert "message" not in str(info.value).lower() or code == "0"


@pytest.mark.parametrize("code", sorted(ERROR_OBJECTS))
def test_error_objects_in_http_responses(wa_dir: Path, code: str) -> None:
    inner = load(wa_dir / f"pywa_error_object_{code}.json")
    body = msgspec.json.encode({"error": inner})
    with pytest.raises(ERROR_OBJECTS[code]) as info:
        adapter().parse_send_response(400, {}, body)
    assert info.value.code == int(code)
    assert info.value.subcode == inner.get("error_subcode")
    # the platform's message (here: dates, a trace id) never reaches our error text
    assert inner.get("message", "") not in str(info.value) or not inner.get("message")

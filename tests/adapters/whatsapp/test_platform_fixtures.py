"""Every file in ../shared/fixtures/platforms/whatsapp/ is parsed or checked as a send
request / send response / error object, with fields asserted.

Two independent checks per webhook: a generic oracle that walks the raw JSON with plain dict
navigation (counts, ids, timestamps, senders), and a hand-written table of what each file
must produce (kinds and content fields read off the fixture by a person).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.adapters.support import load, pick
from tests.adapters.whatsapp.support import parse

ITEM_LISTS = ("messages", "message_echoes", "statuses", "errors", "groups", "user_preferences")
HANDLED_FIELDS = {
    "messages", "smb_message_echoes", "user_preferences", "group_lifecycle_update",
    "group_participants_update", "group_settings_update",
}
KNOWN_STATUSES = {"sent", "delivered", "read", "failed", "played", "deleted"}
C = "content."

# file -> one dict per expected envelope: attribute path -> value (written from the fixtures)
EXPECT: dict[str, list[dict[str, Any]]] = {
    "courier_audio.json": [{"kind": "media", C + "media_kind": "audio",
                            C + "media_ref": "id_audio", C + "caption": "Check out my new phone!"}],
    "courier_button.json": [{"kind": "postback", C + "payload": "No-Button-Payload",
                             C + "title": "No", C + "source": "template_button",
                             "reply_to": "gBGGFmkiWVVPAgkgQkwi7IORac0"}],
    "courier_button_reply.json": [{"kind": "interactive_reply", C + "reply_type": "button",
                                   C + "reply_id": "id_button_reply", C + "title": "Yes"}],
    "courier_document.json": [{"kind": "media", C + "media_kind": "document",
                               C + "mime": "application/pdf", C + "media_ref": "id_document"}],
    "courier_duplicate.json": [{"kind": "text", "platform_message_id": "external_id"},
                               {"kind": "text", "platform_message_id": "external_id"}],
    "courier_error_errors.json": [{"kind": "system", C + "event": "platform_error",
                                   "conversation.type": "account",
                                   "conversation.id": "1234567890"}],
    "courier_error_msg.json": [{"kind": "unsupported", C + "platform_type": "unsupported",
                                C + "reason": "Unsupported message type"}],
    "courier_error_status.json": [{"kind": "status", C + "status": "failed",
                                   C + "target": "external_id", C + "error.code": 131014}],
    "courier_group_message.json": [{"kind": "text", "conversation.id": "555555555",
                                    "conversation.type": "group", "sender.id": "5678",
                                    C + "text": "Hello World, group message"}],
    "courier_hello.json": [{"kind": "text", C + "text": "Hello World", "sender.id": "5678",
                            "sender.name": "Kerry Fisher", "platform_ts": 1_454_119_029_000,
                            "channel.account_id": "1234567890", "channel.platform": "whatsapp"}],
    "courier_hello_bsuid_in_from.json": [{"sender.id": "US.1234", "sender.alt_id": None,
                                          "sender.username": "kfisher"}],
    "courier_hello_from_bsuid.json": [{"sender.id": "US.1234", "conversation.id": "US.1234",
                                       "sender.parent_id": "US.ENT.5678",
                                       "sender.username": "kfisher"}],
    "courier_hello_invalid_user_id.json": [{"sender.id": "5678", "sender.alt_id": "foo_bar"}],
    "courier_hello_user_id.json": [{"sender.id": "5678", "sender.alt_id": "US.1234",
                                    "sender.username": "@kfisher"}],
    "courier_ignore_status.json": [{"kind": "status", C + "status": "deleted"}],
    "courier_image.json": [{"kind": "media", C + "media_kind": "image", C + "mime": "image/jpeg",
                            C + "caption": "Check out my new phone!"}],
    "courier_invalid_from.json": [{"kind": "text", "sender.id": "bla"}],
    "courier_invalid_status.json": [{"kind": "unsupported", C + "platform_type":
                                     "status:in_orbit"}],
    "courier_invalid_timestamp.json": [{"kind": "text", "platform_ts": None,
                                        C + "text": "Hello World"}],
    "courier_list_reply.json": [{"kind": "interactive_reply", C + "reply_type": "list",
                                 C + "reply_id": "id_list_reply"}],
    "courier_location.json": [{"kind": "location", C + "latitude": 0.0, C + "longitude": 1.0,
                               C + "name": "Main Street Beach"}],
    "courier_nfm_reply.json": [{"kind": "interactive_reply", C + "reply_type": "flow",
                                C + "response_json":
                                '{"flow_token": "fl0w+t0k3n", "first_name": "Bob", "age": "32"}'}],
    "courier_nfm_reply_non_object.json": [{"kind": "interactive_reply",
                                           C + "response_json": '["not", "an", "object"]'}],
    "courier_no_from.json": [{"kind": "unsupported", C + "platform_type": "text",
                              C + "reason": "message without a sender id",
                              "sender": None, "conversation.type": "account",
                              "conversation.id": "1234567890",
                              "platform_message_id": "external_id"}],
    "courier_valid_status.json": [{"kind": "status", C + "status": "sent", "sender": None,
                                   C + "recipient_id": "5678"}],
    "courier_video.json": [{"kind": "media", C + "media_kind": "video", C + "media_ref":
                            "id_video"}],
    "courier_voice.json": [{"kind": "media", C + "media_kind": "voice", C + "media_ref":
                            "id_voice", C + "mime": "audio/ogg; codecs=opus"}],
    "meta_openapi_webhook_button_message.json": [{"kind": "postback",
                                                  C + "payload": "Unsubscribe"}],
    "meta_openapi_webhook_contact_sharing_message.json": [
        {"kind": "contacts", C + "contacts.0.name": "Lucía Gómez",
         C + "contacts.0.organization": "Google",
         C + "contacts.0.phones.0.platform_user_id": "19835552319",
         C + "contacts.0.phones.0.type": "MOBILE"}],
    "meta_openapi_webhook_group_create_message.json": [
        {"kind": "system", C + "event": "group_lifecycle_update.group_create",
         "conversation.type": "group", "channel.account_id": "106540352242922"}],
    "meta_openapi_webhook_group_remove_participants.json": [
        {"kind": "system", C + "event": "group_participants_update.group_create"}],
    "meta_openapi_webhook_group_settings_update.json": [
        {"kind": "system", C + "event": "group_settings_update.group_settings_update"}],
    "meta_openapi_webhook_image_message.json": [{"kind": "media", C + "caption": "Taj Mahal",
                                                 C + "media_ref": "1003383421387256"}],
    "meta_openapi_webhook_interactive_button_reply_message.json": [
        {"kind": "interactive_reply", C + "reply_id": "cancel-button", C + "title": "Cancel"}],
    "meta_openapi_webhook_interactive_list_reply_message.json": [
        {"kind": "interactive_reply", C + "reply_id": "priority_express",
         C + "description": "Next Day to 2 Days"}],
    "meta_openapi_webhook_location_message.json": [{"kind": "location", C + "name":
                                                    "Philz Coffee"}],
    "meta_openapi_webhook_order_message.json": [{"kind": "order", C + "catalog_id":
                                                 "194836987003835", C + "text": None}],
    "meta_openapi_webhook_reaction_message.json": [
        {"kind": "reaction", C + "emoji": "👍", C + "removed": False,
         C + "target": "wamid.HBgLMTY1MDM4Nzk0MzkVAgARGBI0RTJEOTc2ODVERUY5RDlGNkYA"}],
    "meta_openapi_webhook_system_message.json": [{"kind": "system", C + "event":
                                                  "user_changed_number", "sender.name": None}],
    "meta_openapi_webhook_text_message.json": [{"kind": "text", "sender.name": "Sheena Nelson",
                                                "platform_ts": 1_749_416_383_000}],
    "meta_openapi_webhook_text_message_from_click_to_whatsapp_ad.json": [
        {"kind": "text", "referral.source": "ad", "referral.source_id": "120226305854810726",
         "referral.headline": "Chat with us"}],
    "meta_openapi_webhook_text_message_with_context_product_inquiry.json": [
        {"kind": "text", "reply_to": "wamid.HBgLMTY1MDM4Nzk0MzkVAgARGA9wcm9kdWN0X2lucXVpcnkA"}],
    "meta_openapi_webhook_unsupported_message.json": [{"kind": "unsupported",
                                                       C + "reason": "Message type unknown"}],
    "pywa_callback_button_button.json": [{"kind": "interactive_reply", C + "reply_type":
                                          "button", C + "reply_id": "callback_data"}],
    "pywa_callback_button_quick_reply.json": [{"kind": "postback", "reply_to":
                                               "wamid.xyzxyz=="}],
    "pywa_callback_button_quick_reply_without_context.json": [
        {"kind": "postback", "reply_to": None, "sender.alt_id": "US.13491208655302741918"}],
    "pywa_callback_selection_callback.json": [{"kind": "interactive_reply", C + "reply_type":
                                               "list", C + "description": None}],
    "pywa_callback_selection_description.json": [{C + "description": "description"}],
    "pywa_deleted_message_revoke.json": [{"kind": "delete", C + "target":
                                          "<ORIGINAL_WHATSAPP_MESSAGE_ID>"}],
    "pywa_edited_message_image.json": [
        {"kind": "edit", C + "target":
         "wamid.HBgLMTQxMjU1NTA4MjkVAgASGBQzQUNCNjk5RDUwNUZGMUZEM0VBRAA=",
         C + "new_content.media_kind": "image", C + "new_content.caption":
         "Updated image caption", C + "new_content.url":
         "https://media.example.com/updated-image.jpg", "channel.account_id": "106540352242922"}],
    "pywa_flow_completion_completion.json": [{"kind": "interactive_reply", C + "reply_type":
                                              "flow", C + "reply_id": "flow", C + "title": "Sent"}],
    "pywa_flow_completion_without_flow_token.json": [{C + "reply_type": "flow"}],
    "pywa_message_animated_sticker.json": [{C + "media_kind": "sticker", C + "animated": True}],
    "pywa_message_audio.json": [{C + "media_kind": "audio", "forwarded": True}],
    "pywa_message_chosen_location.json": [{C + "address": "1 Hacker Way, Menlo Park, CA 94025"}],
    "pywa_message_contacts.json": [{"kind": "contacts", C + "contacts.1.name": "Monica",
                                    C + "contacts.2.phones.0.number": "+1 777-777-7777"}],
    "pywa_message_current_location.json": [{C + "latitude": 12.25089, C + "name": None}],
    "pywa_message_document.json": [{C + "filename": "filename.pdf", C + "caption": "caption"}],
    "pywa_message_forwarded.json": [{"forwarded": True, C + "text": "forwarded text"}],
    "pywa_message_forwarded_many_times.json": [{"forwarded": True}],
    "pywa_message_image.json": [{C + "media_kind": "image", C + "url": None}],
    "pywa_message_interactive_message_with_err.json": [
        {"kind": "unsupported", C + "platform_type": "interactive"},
        {"kind": "system", C + "event": "platform_error", C + "body":
         "131000: Something went wrong"}],
    "pywa_message_media_with_url.json": [{C + "url": "https://lookaside.fbsbx.com/whatsapp_busi"
                                          "ness/attachments/?mid=65463453&source=webhook&ext="
                                          "487r9re&hash=heiwchueowbcew-dnedcw"}],
    "pywa_message_order.json": [{"kind": "order", C + "catalog_id": "354160437058781"}],
    "pywa_message_reaction.json": [{"kind": "reaction", C + "emoji": "😮",
                                    C + "target": "wamid.yzxyzx="}],
    "pywa_message_referral.json": [{"referral.click_id": "CTWA_CLID", "referral.source":
                                    "ad or post"}],
    "pywa_message_reply.json": [{"reply_to": "wamid.xyzxyz==", "forwarded": False}],
    "pywa_message_static_sticker.json": [{C + "media_kind": "sticker", C + "animated": False}],
    "pywa_message_status_delivered.json": [{C + "status": "delivered", C + "error": None}],
    "pywa_message_status_failed.json": [{C + "status": "failed", C + "error.code": 130472,
                                         C + "error.detail": "Failed to send message because "
                                         "this user's phone number is part of an experiment"}],
    "pywa_message_status_group.json": [{C + "status": "read", "conversation.type": "group",
                                        "conversation.id": "fowefinoewcnw",
                                        C + "recipient_id":
                                        "<GROUP_PARTICIPANT_USER_PHONE_NUMBER>"}],
    "pywa_message_status_played.json": [{C + "status": "played"}],
    "pywa_message_status_read.json": [{C + "status": "read", "platform_ts": 1_689_380_458_000}],
    "pywa_message_status_sent.json": [{C + "status": "sent", C + "correlation": None}],
    "pywa_message_status_with_tracker.json": [{C + "correlation": "some data"}],
    "pywa_message_text.json": [{C + "text": "Body Text", "sender.alt_id":
                                "US.13491208655302741918", "sender.parent_id":
                                "US.ENT.11815799212886844830"}],
    "pywa_message_unreaction_empty.json": [{"kind": "reaction", C + "removed": True,
                                            C + "emoji": ""}],
    "pywa_message_unreaction_no_emoji.json": [{"kind": "reaction", C + "removed": True}],
    "pywa_message_unsupported.json": [{C + "platform_type": "unsupported"}],
    "pywa_message_unsupported_with_type.json": [{C + "platform_type": "pool",
                                                 C + "reason": "Message type unknown"}],
    "pywa_message_video.json": [{C + "media_kind": "video", C + "mime": "video/mp4"}],
    "pywa_message_voice.json": [{C + "media_kind": "voice"}],
    "pywa_outgoing_message_delete.json": [{"kind": "delete", "direction": "out", "echo": True,
                                           "conversation.id": "972987654321"}],
    "pywa_outgoing_message_edit.json": [{"kind": "edit", "direction": "out", "echo": True,
                                         C + "new_content.text": "Text was edited"}],
    "pywa_outgoing_message_text.json": [{"kind": "text", "direction": "out", "echo": True,
                                         "conversation.id": "<WHATSAPP_USER_PHONE_NUMBER>",
                                         "sender.id": "<BUSINESS_DISPLAY_PHONE_NUMBER>",
                                         "sender.name": None}],
    "pywa_system_identity_change.json": [{C + "event": "customer_identity_changed"}],
    "pywa_system_phone_number_change.json": [{C + "event": "user_changed_number",
                                              "sender.id": "972987654321"}],
    "pywa_user_marketing_preferences_resume.json": [
        {"kind": "system", C + "event": "marketing_messages.resume",
         "conversation.id": "16505551234", "platform_ts": 1_731_705_721_000}],
    "pywa_user_marketing_preferences_signup.json": [
        {"kind": "system", C + "event": "marketing_messages.signup",
         C + "body": "User signed up via signup link"}],
}


def _webhook_files(root: Path) -> list[Path]:
    return [p for p in sorted((root / "whatsapp").glob("*.json"))
            if load(p).get("object") == "whatsapp_business_account"]


@pytest.fixture(scope="module")
def wa_dir(platform_fixtures_root: Path) -> Path:
    return platform_fixtures_root / "whatsapp"


def test_every_webhook_fixture_has_hand_written_expectations(wa_dir: Path) -> None:
    names = {p.name for p in _webhook_files(wa_dir.parent)}
    assert names == set(EXPECT), (names - set(EXPECT), set(EXPECT) - names)


@pytest.mark.parametrize("name", sorted(EXPECT))
def test_webhook_fixture_matches_expectations(wa_dir: Path, name: str) -> None:
    envelopes = parse((wa_dir / name).read_bytes())
    expected = EXPECT[name]
    assert len(envelopes) == len(expected)
    for env, fields in zip(envelopes, expected, strict=True):
        for path, value in fields.items():
            assert pick(env, path) == value, (name, path)
        assert env.tenant == "tenant-1"
        assert env.received_ts == 1_750_000_000_000
        assert env.conversation.id, (name, "every envelope has a conversation")


@pytest.mark.parametrize("name", sorted(EXPECT))
def test_webhook_fixture_against_generic_oracle(wa_dir: Path, name: str) -> None:
    raw = load(wa_dir / name)
    envelopes = iter(parse((wa_dir / name).read_bytes()))
    for entry in raw["entry"]:
        for change in entry["changes"]:
            value = change["value"]
            if change["field"] not in HANDLED_FIELDS:
                assert next(envelopes).kind == "unsupported"
                continue
            for key in ITEM_LISTS:
                for item in value.get(key, []):
                    _check_item(next(envelopes), key, item, value)
    assert next(envelopes, None) is None


def _check_item(env: Any, key: str, item: dict[str, Any], value: dict[str, Any]) -> None:
    assert env.channel.account_id == value["metadata"]["phone_number_id"]
    ts = item.get("timestamp")
    expected_ts = int(ts) * 1000 if str(ts).isdigit() else None
    if key in ("messages", "message_echoes"):
        assert env.platform_message_id == item["id"]
        assert env.platform_ts == expected_ts
        assert env.direction == ("out" if key == "message_echoes" else "in")
        sender = item.get("from") or item.get("from_user_id")
        assert (env.sender.id if env.sender else None) == sender
        if key == "messages" and sender:
            assert env.conversation.id == item.get("group_id", sender)
    elif key == "statuses":
        assert env.platform_ts == expected_ts
        assert env.conversation.id == item["recipient_id"]
        if item["status"] in KNOWN_STATUSES:
            assert (env.content.status, env.content.target) == (item["status"], item["id"])
        else:
            assert env.kind == "unsupported"
    elif key == "errors":
        assert env.kind == "system" and str(item["code"]) in (env.content.body or "")
    else:
        assert env.kind == "system" and env.platform_ts == expected_ts

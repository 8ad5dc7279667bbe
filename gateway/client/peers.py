"""Pairwise sessions between a tenant's devices, for what one device seals to its colleagues
(replies, notes, canned responses): the first message towards a device claims its prekey
bundle (a one-time prekey, or the last-resort key) and checks it against the identity key the
admin-signed roster names; the colleague opens the session from the prekey message.

Imports: ``crypto``, ``gateway.wire`` and the client only.
"""

from __future__ import annotations

from crypto import PrekeyBundle
from gateway.client.device import DeviceError, PairChannel
from gateway.client.http import GatewayHTTP
from gateway.wire import Roster, RosterDevice, device_key

__all__ = ["colleagues", "peer_channels"]


def colleagues(http: GatewayHTTP, roster: Roster) -> list[RosterDevice]:
    """The roster's devices other than this one."""
    me = http.device.device_id
    if me is None:
        raise DeviceError("device is not registered yet")
    if roster.identity_of(me) != http.device.identity_key:
        raise DeviceError("this device is not on the roster")
    return [d for d in roster.devices if d.device_id != me]


async def peer_channels(http: GatewayHTTP, peers: list[RosterDevice]) -> dict[bytes, PairChannel]:
    """A channel per peer (by device key), opening a session first where there is none."""
    device = http.device
    for peer in peers:
        if device.sessions.get(peer.identity_key):
            continue
        bundle = await http.claim_bundle(peer.device_id)
        session = device.crypto.create_outbound_session(PrekeyBundle(
            identity_key=bundle.identity_key, signed_prekey_id=bundle.signed_prekey_id,
            signed_prekey=bundle.signed_prekey,
            signed_prekey_signature=bundle.signed_prekey_signature,
            one_time_prekey_id=bundle.one_time_prekey_id,
            one_time_prekey=bundle.one_time_prekey), expected_identity=peer.identity_key)
        device.sessions[peer.identity_key] = [session]
    return {device_key(p.device_id): PairChannel(device, p.identity_key) for p in peers}

"""The city's presence, made explicit the way Sparkplug B's primary host STATE is.

Central publishes a signed state on ``ewarung/v1/central/{city}/state``, retained, QoS 1: "online"
when it has connected and subscribed, "offline" as its last will and when it stops. Both carry
`since`, the moment that connection began, so an "offline" left over from an earlier connection
cannot be taken for the current one. A device that sees "online" with a `since` it has not seen
before knows the city has (re)subscribed, and publishes again everything not yet acknowledged:
messages a broker accepted while no consumer was subscribed (after a broker restart, a shared
subscription exists only once its consumer is back) would otherwise wait for `ack_timeout_s`.

One module for both sides, so the topic, the token and its checks exist once::

    {"schema": "ewarung.central-state/1", "city": "...", "state": "online" | "offline",
     "since": "<UTC ISO 8601 with ms>", "consumer": "<MQTT client id>"}
"""

from __future__ import annotations

from dataclasses import dataclass

from pos.messages import TOPIC_ROOT
from pos.signing import BadSignature, Signer, canonical_json, jws_sign, jws_verify

STATE_TYP = "ewarung-state+jws"
STATE_SCHEMA = "ewarung.central-state/1"
STATES = ("online", "offline")


def state_topic(city: str) -> str:
    """Where a city's central announces itself; devices of that city subscribe to it."""
    return f"{TOPIC_ROOT}/central/{city}/state"


@dataclass(frozen=True)
class CityState:
    """A checked state: `since` tells one central connection from the next."""

    state: str
    since: str
    consumer: str

    @property
    def online(self) -> bool:
        """Only "online" asks anything of a device; "offline" is for its log and status."""
        return self.state == "online"


class StateRefused(ValueError):
    """A state not signed by the city's central key, or not for this city: ignored, never acted on."""


def build_state(city: str, state: str, since: str, consumer: str, signer: Signer) -> bytes:
    """The token central publishes, signed with the same key as its acks so devices already trust it."""
    if state not in STATES:
        raise ValueError(f"state must be one of {STATES}")
    payload = {"schema": STATE_SCHEMA, "city": city, "state": state, "since": since, "consumer": consumer}
    return jws_sign(canonical_json(payload), signer, STATE_TYP)


def parse_state(token: bytes, keys: dict, city: str) -> CityState:
    """A forged "online" would only make a device resend (harmless), but a state is still checked
    like an ack: the central key, this city, a known state."""
    try:
        obj = jws_verify(token, keys, STATE_TYP).json()
    except BadSignature as exc:
        raise StateRefused(f"central state refused: {exc}") from None
    if not isinstance(obj, dict) or obj.get("schema") != STATE_SCHEMA:
        raise StateRefused("central state refused: unknown schema")
    if obj.get("city") != city:
        raise StateRefused(f"central state refused: it is for city {obj.get('city')!r}")
    if obj.get("state") not in STATES or not isinstance(obj.get("since"), str):
        raise StateRefused("central state refused: state must be online or offline, with since")
    return CityState(obj["state"], obj["since"], str(obj.get("consumer", "")))

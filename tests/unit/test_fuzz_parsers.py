"""Hostile input to the parsers of the core: only the documented error, never a crash."""

from __future__ import annotations

import tomllib

from hypothesis import given, settings
from hypothesis import strategies as st

from firmware_config.config import ConfigError, parse_config
from pos.sample_city import demo_key
from pos.signing import BadSignature, EcdsaSigner, jws_sign, jws_verify

KEYS = {"dev": demo_key("device").public_key()}
toml_values = st.recursive(
    st.one_of(st.integers(), st.floats(allow_nan=False), st.text(max_size=20), st.booleans()),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3),
    max_leaves=8,
)
SECTIONS = ["device", "reader", "printer", "mqtt", "keys", "policy", "demo", "other"]
KEYS_IN = ["id", "kind", "width_mm", "port", "tls", "ca_file", "pin_tries", "offline_max_value", "data_dir", "x"]


def _toml(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return '"' + value.encode("unicode_escape").decode().replace('"', '\\"') + '"'
    if isinstance(value, list):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    return "{" + ", ".join(f'"{k}" = {_toml(v)}' for k, v in value.items() if k.isprintable()) + "}"


@settings(max_examples=400, deadline=None)
@given(st.dictionaries(st.sampled_from(SECTIONS), st.dictionaries(st.sampled_from(KEYS_IN), toml_values, max_size=4), max_size=4))
def test_structured_config_garbage_gives_config_error(doc):
    text = "\n".join(f"[{s}]\n" + "\n".join(f"{k} = {_toml(v)}" for k, v in kv.items()) for s, kv in doc.items())
    try:
        tomllib.loads(text)
    except tomllib.TOMLDecodeError:
        pass
    try:
        parse_config(text)
    except ConfigError as exc:
        assert "config" in str(exc)


@settings(max_examples=400, deadline=None)
@given(st.text(max_size=300))
def test_arbitrary_text_config(text):
    try:
        parse_config(text)
    except ConfigError:
        pass


@settings(max_examples=500, deadline=None)
@given(st.one_of(st.binary(max_size=400), st.text(max_size=400)))
def test_random_tokens_only_bad_signature(token):
    try:
        jws_verify(token, KEYS)
    except BadSignature:
        return
    raise AssertionError("a random token verified")


@settings(max_examples=200, deadline=None)
@given(st.integers(min_value=0), st.integers(min_value=0, max_value=255))
def test_any_flipped_byte_is_refused(pos_seed, flip):
    token = bytearray(jws_sign(b'{"seq":1,"total":7000}', EcdsaSigner(demo_key("device"), "dev"), "t"))
    i = pos_seed % len(token)
    if flip == token[i]:
        flip ^= 1
    token[i] = flip
    try:
        jws_verify(bytes(token), KEYS)
    except BadSignature:
        return
    # base64url has padding-free trailing bits: a change there can decode to the same bytes
    original = jws_sign(b'{"seq":1,"total":7000}', EcdsaSigner(demo_key("device"), "dev"), "t")
    assert jws_verify(original, KEYS).payload == jws_verify(bytes(token), KEYS).payload

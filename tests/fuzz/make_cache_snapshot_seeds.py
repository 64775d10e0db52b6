#!/usr/bin/env python3
"""Writes the cache_snapshot fuzzer's seeds: snapshots with valid checksums whose entries are
hostile (statuses outside the cache rules, framing and hop-by-hop fields, fields that would
split a response, unstorable heads, times in the future), each between good entries, so the
fuzzer starts at the per-entry validation rather than at the checksum. The format is
src/cache/snapshot.cc's. Run from anywhere; rewrites tests/fuzz/corpus/cache_snapshot/."""

import os
import struct

MAGIC = b"CONFGATE-CACHE\n"
VERSION = 1
STORED_AT = 1_700_000_000 * 10**9
MINUTE = 60 * 10**9


def u64(value):
    return struct.pack("<Q", value & (2**64 - 1))


def string(value):
    return u64(len(value)) + value


def fnv1a64(data):
    value = 0xCBF29CE484222325
    for byte in data:
        value = ((value ^ byte) * 0x100000001B3) & (2**64 - 1)
    return value


def entry(key, headers, body=b"value", status=200, vary_names=(), vary_key=b"",
          stored_at=STORED_AT, initial_age=0, fresh_for=MINUTE):
    out = string(key) + u64(len(vary_names))
    for name in vary_names:
        out += string(name)
    out += string(vary_key) + u64(status) + u64(len(headers))
    for name, value in headers:
        out += string(name) + string(value)
    return out + string(body) + u64(stored_at) + u64(initial_age) + u64(fresh_for)


def snapshot(entries):
    payload = u64(VERSION) + u64(len(entries)) + b"".join(entries)
    return MAGIC + u64(len(payload)) + payload + u64(fnv1a64(payload))


GOOD = [(b"ETag", b'"1"'), (b"Content-Type", b"text/plain")]


def between_good(hostile):
    return snapshot([entry(b"GET\nconfig.example\n/v1/kv/a", GOOD), hostile,
                     entry(b"GET\nconfig.example\n/v1/kv/c", GOOD)])


SEEDS = {
    "valid": snapshot([
        entry(b"GET\nconfig.example\n/v1/kv/a", GOOD),
        entry(b"GET\nconfig.example\n/v1/kv/v", GOOD + [(b"Vary", b"X-Tenant")],
              vary_names=[b"x-tenant"], vary_key=b"x-tenant=a\n"),
    ]),
    "status_600": between_good(entry(b"b", GOOD, status=600)),
    "status_99": between_good(entry(b"b", GOOD, status=99)),
    "status_204": between_good(entry(b"b", GOOD, status=204)),
    "te_and_cl": between_good(entry(b"b", GOOD + [(b"Transfer-Encoding", b"chunked"),
                                                 (b"Content-Length", b"5")])),
    "content_length": between_good(entry(b"b", GOOD + [(b"Content-Length", b"99")])),
    "hop_by_hop": between_good(entry(b"b", GOOD + [(b"Connection", b"close, X-A"),
                                                  (b"Keep-Alive", b"timeout=5"),
                                                  (b"Upgrade", b"h2c")])),
    "split_value": between_good(entry(b"b", GOOD + [(b"X-A", b"a\r\nSet-Cookie: s=1")])),
    "split_name": between_good(entry(b"b", GOOD + [(b"X-A\r\nX-B", b"x")])),
    "set_cookie": between_good(entry(b"b", GOOD + [(b"Set-Cookie", b"session=forged")])),
    "no_store": between_good(entry(b"b", GOOD + [(b"Cache-Control", b"no-store")])),
    "vary_mismatch": between_good(entry(b"b", GOOD + [(b"Vary", b"X-Tenant")])),
    "future_and_negative": snapshot([
        entry(b"a", GOOD, stored_at=STORED_AT + 3650 * 24 * 3600 * 10**9),
        entry(b"b", GOOD, initial_age=-MINUTE),
        entry(b"c", GOOD, fresh_for=-MINUTE),
    ]),
}


def main():
    directory = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus",
                             "cache_snapshot")
    os.makedirs(directory, exist_ok=True)
    for name, data in SEEDS.items():
        with open(os.path.join(directory, name), "wb") as handle:
            handle.write(data)


if __name__ == "__main__":
    main()

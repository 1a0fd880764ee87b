#!/usr/bin/env python3
"""Verify a Print.one webhook signature (Python 3 standard library only).

Library use:
    outcome, index = verify(secrets, raw_body_bytes, header_pairs)

Command line:
    python3 verify.py SECRET BODY_FILE SIGNATURE   # exit 0 silently when valid, else 1
    python3 verify.py --vectors FILE               # run the test vector file

See docs/VERIFYING.md for the rules implemented here.
"""
import base64
import hashlib
import hmac
import json
import sys

SIGNATURE_HEADERS = ("x-webhook-hmac-sha256", "x-printone-hmac-sha256")


def verify(secrets, body, headers):
    """Return (outcome, matched_secret_index or None).

    secrets -- list of str, tried in order (several during a rotation)
    body    -- the raw request body as bytes, exactly as received
    headers -- iterable of (name, value) pairs, repeats included. Pass every
               pair the server received; a server that folds repeated headers
               into "a, b" still fails closed (the folded value is malformed).
    """
    # Rule 1: an empty secret (or none at all) is a configuration error.
    if not secrets or any(s == "" for s in secrets):
        return "empty_secret", None

    # Rule 2: collect every value of both names (case-insensitive), trimmed.
    values = [
        value.strip(" \t")
        for name, value in headers
        if name.isascii() and name.lower() in SIGNATURE_HEADERS
    ]
    if not values:
        return "missing", None
    if any(v != values[0] for v in values):
        return "ambiguous", None
    value = values[0]

    # Rule 3: exactly 44 characters of canonical, padded, standard base64
    # that decode to 32 bytes. Re-encoding and comparing rejects URL-safe
    # characters, missing padding, inner whitespace and non-zero spare bits.
    try:
        mac = base64.b64decode(value, validate=True)
    except ValueError:  # binascii.Error, or non-ASCII text
        return "malformed", None
    if len(value) != 44 or len(mac) != 32 or base64.b64encode(mac).decode() != value:
        return "malformed", None

    # Rule 4: HMAC-SHA256 over the raw body with each secret, compared in
    # constant time. The secret is used as its UTF-8 bytes, nothing else.
    for index, secret in enumerate(secrets):
        expected = hmac.new(secret.encode("utf-8"), body, hashlib.sha256).digest()
        if hmac.compare_digest(expected, mac):
            return "valid", index
    return "mismatch", None


def run_vectors(path):
    """Run every vector in the file; return the process exit code."""
    with open(path, encoding="utf-8") as f:
        vectors = json.load(f)["vectors"]
    passed = failed = 0
    for v in vectors:
        outcome, index = verify(v["secrets"], v["body"].encode("utf-8"), v["headers"])
        want = v["expected"]
        if outcome == want["outcome"] and index == want.get("matched_secret"):
            passed += 1
        else:
            failed += 1
            print(f"FAIL {v['name']}: expected {want['outcome']} {want.get('matched_secret')}, "
                  f"got {outcome} {index}")
    print(f"{passed} passed, {failed} failed")
    return 0 if failed == 0 else 1


def main(argv):
    usage = "usage: verify.py SECRET BODY_FILE SIGNATURE | verify.py --vectors FILE"
    if len(argv) == 2 and argv[0] == "--vectors":
        try:
            return run_vectors(argv[1])
        except (OSError, ValueError, KeyError, TypeError) as e:
            print(f"cannot read vectors: {e}", file=sys.stderr)
            return 2
    if len(argv) != 3 or argv[0] == "--vectors":
        print(usage, file=sys.stderr)
        return 2
    secret, body_file, signature = argv
    try:
        with open(body_file, "rb") as f:
            body = f.read()  # raw bytes: never decode or re-serialise
    except OSError as e:
        print(f"cannot read {body_file}: {e.strerror}", file=sys.stderr)
        return 2
    outcome, _ = verify([secret], body, [("x-webhook-hmac-sha256", signature)])
    if outcome == "valid":
        return 0
    print(outcome, file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

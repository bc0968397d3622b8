#!/usr/bin/env python3
"""Independent verifier for the signatures frontdesk puts on outgoing webhook deliveries.

The integration tests capture a delivery with a real HTTP receiver and hand it to this script, so
the signatures are checked by code that shares nothing with the server:

* ``x-chatgenius-signature`` with the ChatGenius document's snippet, exactly as written there
  (hex HMAC-SHA256 of the raw body, keyed with the whole secret string, ``whsec_`` prefix included);
* the Standard Webhooks headers (``webhook-id``, ``webhook-timestamp``, ``webhook-signature``) with
  the ``standardwebhooks`` package from PyPI, which also enforces its 5-minute timestamp tolerance;
* with ``previous_secret`` (secret rotation overlap): the Standard Webhooks headers again with the
  previous secret, that ``webhook-signature`` carries at least two ``v1,`` signatures, and
  ``x-chatgenius-signature-previous`` with the snippet and the previous secret.

Input, one JSON object on stdin::

    {"secret": "whsec_...", "headers": {"lowercase-name": "value", ...},
     "body": "<raw body as a string>", "previous_secret": "whsec_..." (optional)}

(``"body_hex"`` may stand instead of ``"body"`` for a body that is not UTF-8.)

Output, one JSON line on stdout::

    {"chatgenius": bool, "standard": bool, "previous": bool | null, "errors": [str, ...]}

Exit status 0 only if every requested check passed, 1 otherwise (including bad input).
"""

import hashlib
import hmac
import json
import sys


# The ChatGenius document's snippet, as written.
def verify_signature(payload_body, signature, secret):
    expected = hmac.new(secret.encode("utf-8"), payload_body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, signature)


def check_chatgenius(header, body, headers, secret, errors):
    """The snippet on one header; a missing or malformed header is a failure, not a crash."""
    signature = headers.get(header)
    if signature is None:
        errors.append(f"{header}: header missing")
        return False
    try:
        ok = verify_signature(body, signature, secret)
    except Exception as exc:  # e.g. non-ASCII header value: compare_digest raises TypeError
        errors.append(f"{header}: cannot compare ({type(exc).__name__}: {exc})")
        return False
    if not ok:
        errors.append(f"{header}: signature does not match")
    return ok


def check_standard(label, body, headers, secret, errors):
    """Standard Webhooks verification with the reference package (timestamp tolerance included)."""
    try:
        from standardwebhooks.webhooks import Webhook
    except ImportError as exc:
        errors.append(f"{label}: the standardwebhooks package is not installed ({exc}); pip install standardwebhooks")
        return False
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        errors.append(f"{label}: body is not UTF-8")
        return False
    try:
        # json_parse=False: only the signature matters here, not whether the body parses.
        Webhook(secret).verify(text, headers, json_parse=False)
    except Exception as exc:  # WebhookVerificationError, or a malformed header / secret
        errors.append(f"{label}: {type(exc).__name__}: {exc}")
        return False
    return True


def main():
    result = {"chatgenius": False, "standard": False, "previous": None, "errors": []}
    errors = result["errors"]
    try:
        request = json.loads(sys.stdin.read())
        secret = request["secret"]
        headers = {str(k).lower(): str(v) for k, v in request.get("headers", {}).items()}
        if "body_hex" in request:
            body = bytes.fromhex(request["body_hex"])
        else:
            body = request["body"].encode("utf-8")
        previous_secret = request.get("previous_secret")
        if not isinstance(secret, str) or not (previous_secret is None or isinstance(previous_secret, str)):
            raise TypeError("secret and previous_secret must be strings")
    except Exception as exc:
        errors.append(f"bad input: {type(exc).__name__}: {exc}")
        print(json.dumps(result))
        return 1

    result["chatgenius"] = check_chatgenius("x-chatgenius-signature", body, headers, secret, errors)
    result["standard"] = check_standard("webhook-signature", body, headers, secret, errors)
    ok = result["chatgenius"] and result["standard"]

    if previous_secret is not None:
        standard_prev = check_standard("webhook-signature (previous secret)", body, headers, previous_secret, errors)
        v1_count = sum(1 for s in headers.get("webhook-signature", "").split(" ") if s.startswith("v1,"))
        if v1_count < 2:
            errors.append(f"webhook-signature: {v1_count} v1 signature(s) during rotation, expected at least 2")
        chatgenius_prev = check_chatgenius(
            "x-chatgenius-signature-previous", body, headers, previous_secret, errors
        )
        result["previous"] = standard_prev and v1_count >= 2 and chatgenius_prev
        ok = ok and result["previous"]

    print(json.dumps(result))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

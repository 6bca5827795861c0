#!/usr/bin/env python3
"""Mint a JWT with PyJWT, an implementation independent of the service's own.

The end-to-end tests use it to prove the service accepts tokens it did not mint itself and
rejects the classic forgeries. Prints the token on stdout.

    mint_jwt.py --secret S --iss I --aud A --sub alice [--alg HS256|HS384|HS512|none]
                [--exp-in SECONDS] [--tamper]
"""
import argparse
import base64
import json
import time

import jwt  # PyJWT


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--secret", required=True)
    p.add_argument("--iss", required=True)
    p.add_argument("--aud", required=True)
    p.add_argument("--sub", required=True)
    p.add_argument("--alg", default="HS256")
    p.add_argument("--exp-in", type=int, default=300, help="seconds from now; negative = expired")
    p.add_argument("--tamper", action="store_true", help="change the payload after signing")
    a = p.parse_args()

    now = int(time.time())
    claims = {"iss": a.iss, "aud": a.aud, "sub": a.sub, "iat": now, "nbf": now - 5, "exp": now + a.exp_in}

    if a.alg == "none":
        # Unsigned token: header {"alg":"none"}, empty signature (RFC 7519 section 6.1).
        token = jwt.encode(claims, None, algorithm="none")
    else:
        token = jwt.encode(claims, a.secret, algorithm=a.alg)

    if a.tamper:
        # Keep the valid signature but swap the payload for one naming another subject.
        header, _, signature = token.split(".")
        forged = dict(claims, sub=a.sub + "-admin")
        payload = b64url(json.dumps(forged, separators=(",", ":")).encode())
        token = ".".join([header, payload, signature])

    print(token)


if __name__ == "__main__":
    main()

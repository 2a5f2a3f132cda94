"""Client side of `private_key_jwt`: the signed assertion a confidential or system client sends.

For Socle's own tools, the demo and the tests; a hospital's software does the same with its own
JOSE library (RFC 7523 §3: iss = sub = client_id, aud = the token endpoint, a unique jti, a short
exp).

    assertion = client_assertion("demo-hopital", load_private_key(path), token_url)
    httpx.post(token_url, data={"grant_type": "client_credentials", "scope": "system/*.rs",
        "client_assertion_type": CLIENT_ASSERTION_TYPE, "client_assertion": assertion})
"""

from __future__ import annotations

import uuid
from pathlib import Path

from joserfc import jwt
from joserfc.jwk import ECKey, RSAKey

from socle.auth.db import epoch_now

CLIENT_ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


def load_private_key(path: Path) -> RSAKey | ECKey:
    data = path.read_bytes()
    try:
        return RSAKey.import_key(data)
    except (ValueError, TypeError):
        return ECKey.import_key(data)


def client_assertion(
    client_id: str,
    key: RSAKey | ECKey,
    audience: str,
    *,
    alg: str | None = None,
    lifetime: int = 60,
    now: int | None = None,
    jti: str | None = None,
) -> str:
    issued_at = epoch_now() if now is None else now
    algorithm = alg or ("RS384" if isinstance(key, RSAKey) else "ES384")
    header = {"alg": algorithm, "typ": "JWT", "kid": key.kid or key.thumbprint()}
    claims = {
        "iss": client_id,
        "sub": client_id,
        "aud": audience,
        "iat": issued_at,
        "exp": issued_at + lifetime,
        "jti": jti or uuid.uuid4().hex,
    }
    return jwt.encode(header, claims, key, algorithms=[algorithm])

"""schemathesis hooks for tests/e2e_contract.rs (loaded with SCHEMATHESIS_HOOKS).

A fresh Idempotency-Key for every request that carries a valid one, as a real client sends a
new key for each new operation. Generated data reuses values (the same key with different
bodies), and the service rightly answers a key reused for a different request with 422 (the
IETF Idempotency-Key draft), which schemathesis would report as a valid request refused.
Negative cases (invalid data, a missing header or token) are left exactly as generated: an edit
makes schemathesis revalidate the case, which would turn a "missing Authorization" case back
into a positive one.
"""
import re
import uuid

import schemathesis

# The same rule as the contract's pattern and the service's parse_key: a bare token of
# visible ASCII, or a quoted one, 1 to 255 characters inside.
VALID_KEY = re.compile(r'^(?:[!#-~][!-~]{0,254}|"|"[!-~]{0,253}[!#-~]|"[!-~]{1,255}")$')


@schemathesis.hook
def before_call(ctx, case, **kwargs):
    if case.meta is not None and case.meta.generation.mode.is_negative:
        return
    headers = case.headers or {}
    for name in list(headers):
        value = headers[name]
        if name.lower() == "idempotency-key" and isinstance(value, str) and VALID_KEY.match(value):
            headers[name] = str(uuid.uuid4())

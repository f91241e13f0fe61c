"""The webhook/REST CRM: contacts looked up in an external CRM over HTTP, records pushed as signed webhooks.

Receivers verify pushes with :func:`verify` (HMAC-SHA256 over ``<timestamp>.<body>``).
"""

from ._backend import WebhookCrm, WebhookCrmConfigError, WebhookCrmSettings
from ._mapping import CrmResponseError, contact_from_body, contact_from_json
from ._signing import DELIVERY_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER, SignatureError, sign, verify

__all__ = [
    "DELIVERY_HEADER",
    "SIGNATURE_HEADER",
    "TIMESTAMP_HEADER",
    "CrmResponseError",
    "SignatureError",
    "WebhookCrm",
    "WebhookCrmConfigError",
    "WebhookCrmSettings",
    "contact_from_body",
    "contact_from_json",
    "sign",
    "verify",
]

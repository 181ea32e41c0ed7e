"""What the webhooks package refuses, each with its own stable code.

Input errors are ``InvalidInput``s (the CLI's exit 2) naming the field; none of them
echoes a secret. Nothing is stored when one is raised.
"""

from __future__ import annotations

from integration_service.errors import PermanentError
from integration_service.inputs import InvalidInput


class WebhookInputInvalid(InvalidInput):
    """A subscription input refused at the boundary; the message names the field."""

    code = "webhook_input_invalid"
    field_name = "webhook"

    def __init__(self, message: str) -> None:
        super().__init__(self.field_name, message)
        # The class's code, not InvalidInput's per-field one: callers match on it.
        self.code = type(self).code


class WebhookUrlInvalid(WebhookInputInvalid):
    """Not an absolute http(s) URL with a host."""

    code = "webhook_url_invalid"
    field_name = "url"


class WebhookTargetForbidden(WebhookInputInvalid):
    """The URL's host resolves to a loopback, private or link-local address (SSRF guard),
    or does not resolve at all."""

    code = "webhook_target_forbidden"
    field_name = "url"


class UnknownEventType(WebhookInputInvalid):
    """An event type that is not in the log's list (or ``*``)."""

    code = "webhook_unknown_event_type"
    field_name = "event_types"


class WebhookSecretInvalid(WebhookInputInvalid):
    """A secret that is not ``whsec_`` followed by base64."""

    code = "webhook_secret_invalid"
    field_name = "secret"


class WebhookSecretTooShort(WebhookInputInvalid):
    """A secret of fewer than 24 bytes (Standard Webhooks' minimum)."""

    code = "webhook_secret_too_short"
    field_name = "secret"


class MaxInFlightInvalid(WebhookInputInvalid):
    """A per-subscription concurrency bound outside 1..1000."""

    code = "webhook_max_in_flight_invalid"
    field_name = "max_in_flight"


class WebhookTenantUnknown(PermanentError):
    """The subscription names a tenant that is not registered."""

    code = "webhook_tenant_unknown"


class SubscriptionNotFound(PermanentError):
    """No subscription with this id belongs to the tenant."""

    code = "webhook_subscription_not_found"


class DeliveryNotFound(PermanentError):
    """No delivery with this id belongs to the tenant."""

    code = "webhook_delivery_not_found"


class DeliveryInFlight(PermanentError):
    """A redelivery asked for a delivery whose attempt is running right now."""

    code = "webhook_delivery_in_flight"


class DispatcherStartFailed(PermanentError):
    """The webhook dispatcher's thread did not come up (its log line says why)."""

    code = "webhook_dispatcher_start_failed"

"""Webhooks: subscriptions, Standard Webhooks signing, delivery jobs and the delivery log.

The door: ``SubscriptionStore`` (add, list, get, remove, rotate the secret, enable and
disable), ``DeliveryLog`` (deliveries, attempts, redelivery) and ``WebhookDispatcher``
(fan-out and delivery, hosted by ``integration-service relay`` or
``python -m integration_service.webhooks``). docs/WEBHOOKS.md describes the behaviour.
"""

from integration_service.webhooks.deliveries import DeliveryLog
from integration_service.webhooks.dispatcher import WebhookDispatcher
from integration_service.webhooks.errors import (
    DeliveryInFlight,
    DeliveryNotFound,
    DispatcherStartFailed,
    MaxInFlightInvalid,
    SubscriptionNotFound,
    UnknownEventType,
    WebhookInputInvalid,
    WebhookSecretInvalid,
    WebhookSecretTooShort,
    WebhookTargetForbidden,
    WebhookTenantUnknown,
    WebhookUrlInvalid,
)
from integration_service.webhooks.records import (
    DELIVERY_STATUSES,
    Attempt,
    Delivery,
    NewSecret,
    Subscription,
)
from integration_service.webhooks.subscriptions import SubscriptionStore
from integration_service.webhooks.validation import ALL_EVENTS

__all__ = [
    "ALL_EVENTS",
    "DELIVERY_STATUSES",
    "Attempt",
    "Delivery",
    "DeliveryInFlight",
    "DeliveryLog",
    "DeliveryNotFound",
    "DispatcherStartFailed",
    "MaxInFlightInvalid",
    "NewSecret",
    "Subscription",
    "SubscriptionNotFound",
    "SubscriptionStore",
    "UnknownEventType",
    "WebhookDispatcher",
    "WebhookInputInvalid",
    "WebhookSecretInvalid",
    "WebhookSecretTooShort",
    "WebhookTargetForbidden",
    "WebhookTenantUnknown",
    "WebhookUrlInvalid",
]

"""Authentication and scopes of the HTTP API."""

from integration_service.api.auth.api_keys import ApiKeyRecord, ApiKeyStore, CreatedKey
from integration_service.api.auth.authenticator import Authenticator
from integration_service.api.auth.principal import SCOPES, Principal

__all__ = ["SCOPES", "ApiKeyRecord", "ApiKeyStore", "Authenticator", "CreatedKey", "Principal"]

"""Throttles per role (tokens are machine callers too: the origination system, reporting)."""

from __future__ import annotations

import os

from rest_framework.throttling import AnonRateThrottle, SimpleRateThrottle

ROLE_RATES = {
    "admin": os.environ.get("API_RATE_ADMIN", "6000/min"),
    "operations": os.environ.get("API_RATE_OPERATIONS", "6000/min"),
    "supervisor": os.environ.get("API_RATE_SUPERVISOR", "1200/min"),
    "collector": os.environ.get("API_RATE_COLLECTOR", "600/min"),
    "auditor": os.environ.get("API_RATE_AUDITOR", "600/min"),
}
DEFAULT_RATE = os.environ.get("API_RATE_OTHER", "120/min")


class RoleRateThrottle(SimpleRateThrottle):
    """One bucket per user, its size set by the most generous of the user's roles."""

    scope = "role"

    def get_rate(self):
        return DEFAULT_RATE  # replaced per request in allow_request

    def allow_request(self, request, view):
        user = request.user
        if not (user and user.is_authenticated):
            return True
        if user.is_superuser:
            rate = ROLE_RATES["admin"]
        else:
            names = set(user.groups.values_list("name", flat=True))
            rates = [ROLE_RATES[n] for n in names if n in ROLE_RATES]
            rate = max(rates, key=lambda r: self.parse_rate(r)[0] / self.parse_rate(r)[1]) if rates else DEFAULT_RATE
        self.rate = rate
        self.num_requests, self.duration = self.parse_rate(rate)
        return super().allow_request(request, view)

    def get_cache_key(self, request, view):
        return self.cache_format % {"scope": self.scope, "ident": request.user.pk}


class PublicVerifyThrottle(AnonRateThrottle):
    """Certificate verification is public: limited per client IP against code guessing."""

    scope = "verify"
    rate = os.environ.get("API_RATE_VERIFY", "60/min")

    def get_rate(self):
        return self.rate

    def get_cache_key(self, request, view):
        return self.cache_format % {"scope": self.scope, "ident": self.get_ident(request)}


class GatewayThrottle(AnonRateThrottle):
    scope = "gateway"
    rate = os.environ.get("API_RATE_GATEWAY", "6000/min")

    def get_rate(self):
        return self.rate

    def get_cache_key(self, request, view):
        return self.cache_format % {"scope": self.scope, "ident": self.get_ident(request)}

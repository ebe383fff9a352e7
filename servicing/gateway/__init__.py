"""Payment gateways for active repayment (主动还款): an adapter interface and the sandbox gateway.

For the portal/API engineers: :func:`start_gateway_payment` (create an order, get the pay URL) and the
callback view ``servicing.gateway.views.callback`` (``/gateway/callback/<gateway>/``).
"""

from .services import GatewayError, SignatureError, handle_callback, start_gateway_payment

__all__ = ["GatewayError", "SignatureError", "handle_callback", "start_gateway_payment"]

"""Gateway views: the sandbox pay page and the signed callback endpoint (CSRF-exempt, HMAC-verified)."""

from __future__ import annotations

from django.http import Http404, JsonResponse
from django.shortcuts import render
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods, require_POST

from servicing.models import GatewayPayment

from .services import GatewayError, SignatureError, get_gateway, handle_callback


@require_http_methods(["GET", "POST"])
def sandbox_pay(request, out_trade_no: str):
    order = GatewayPayment.objects.select_related("loan").filter(out_trade_no=out_trade_no).first()
    if order is None:
        raise Http404
    result = None
    if request.method == "POST" and order.status == "created":
        body, headers = get_gateway("sandbox").build_callback(order, succeeded=request.POST.get("action") == "pay")
        try:
            result = handle_callback(body, headers)
        except GatewayError as exc:
            result = {"ok": False, "error": str(exc)}
        order.refresh_from_db()
    return render(request, "gateway/pay.html", {"order": order, "result": result})


@csrf_exempt
@require_POST
def callback(request, gateway: str = "sandbox"):
    headers = {k: request.headers.get(k, "") for k in ("X-Gateway-Timestamp", "X-Gateway-Signature")}
    try:
        result = handle_callback(request.body, headers, gateway=gateway)
    except SignatureError as exc:
        return JsonResponse({"ok": False, "message": str(exc), "field": "signature"}, status=403)
    except GatewayError as exc:
        return JsonResponse({"ok": False, "message": str(exc), "field": "body"}, status=400)
    return JsonResponse(result)

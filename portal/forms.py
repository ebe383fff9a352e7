from django import forms
from django.contrib.auth.forms import AuthenticationForm
from django.utils.translation import gettext_lazy as _

from .models import PayIntent
from .services import BANKS


class PhoneLoginForm(AuthenticationForm):
    """Phone number + password; the phone number is the borrower's username."""

    username = forms.CharField(label=_("手机号"), max_length=20,
                               widget=forms.TextInput(attrs={"autocomplete": "username", "inputmode": "tel",
                                                             "autofocus": True}))
    password = forms.CharField(label=_("密码"), strip=False,
                               widget=forms.PasswordInput(attrs={"autocomplete": "current-password"}))

    error_messages = {
        "invalid_login": _("手机号或密码不正确。连续输错多次将暂时锁定。"),
        "inactive": _("该账户已停用，请联系客服"),
    }

    def confirm_login_allowed(self, user):
        super().confirm_login_allowed(user)
        if not hasattr(user, "borrower"):
            raise forms.ValidationError(self.error_messages["invalid_login"], code="invalid_login")


class ResetRequestForm(forms.Form):
    phone = forms.CharField(label=_("手机号"), max_length=20,
                            widget=forms.TextInput(attrs={"inputmode": "tel", "autocomplete": "username"}))


class ResetConfirmForm(forms.Form):
    phone = forms.CharField(label=_("手机号"), max_length=20, widget=forms.TextInput(attrs={"inputmode": "tel"}))
    code = forms.RegexField(label=_("短信验证码"), regex=r"^\d{6}$",
                            error_messages={"invalid": _("请输入 6 位数字验证码")},
                            widget=forms.TextInput(attrs={"inputmode": "numeric", "autocomplete": "one-time-code"}))
    new_password = forms.CharField(label=_("新密码"), strip=False, min_length=8,
                                   widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}))
    new_password2 = forms.CharField(label=_("再次输入新密码"), strip=False,
                                    widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}))

    def clean(self):
        data = super().clean()
        if data.get("new_password") and data.get("new_password") != data.get("new_password2"):
            self.add_error("new_password2", _("两次输入的密码不一致"))
        return data


class PayForm(forms.Form):
    kind = forms.ChoiceField(label=_("还款方式"), choices=PayIntent.Kind.choices, widget=forms.RadioSelect)
    amount = forms.CharField(label=_("金额（元）"), required=False, max_length=20,
                             widget=forms.TextInput(attrs={"inputmode": "decimal", "placeholder": "0.00"}))
    token = forms.UUIDField(widget=forms.HiddenInput)


class CancelMandateForm(forms.Form):
    understood = forms.BooleanField(label=_("我已阅读并了解解约后果，将按时主动还款"))
    password = forms.CharField(label=_("请输入登录密码确认"), strip=False,
                               widget=forms.PasswordInput(attrs={"autocomplete": "current-password"}))


class SignMandateForm(forms.Form):
    bank_code = forms.ChoiceField(label=_("开户银行"), choices=BANKS)
    account_no = forms.RegexField(label=_("银行卡号"), regex=r"^[\d ]{12,23}$",
                                  error_messages={"invalid": _("请输入 12–19 位银行卡号")},
                                  widget=forms.TextInput(attrs={"inputmode": "numeric", "autocomplete": "off"}))
    agree = forms.BooleanField(label=_("我授权按期从该账户自动扣款"))


class ComplaintForm(forms.Form):
    loan = forms.IntegerField(label=_("相关贷款"), widget=forms.Select)
    subject = forms.CharField(label=_("主题"), max_length=120)
    description = forms.CharField(label=_("详细描述"), max_length=4000, widget=forms.Textarea(attrs={"rows": 5}))

    def __init__(self, *args, loans=(), **kwargs):
        super().__init__(*args, **kwargs)
        # only the borrower's own loans are offered; an id typed in by hand is re-checked by the service (404)
        self.fields["loan"].widget.choices = [(loan.pk, f"{loan.masked_contract_no} · {loan.product.name}")
                                              for loan in loans]


class HardshipForm(forms.Form):
    KINDS = [("deferral", _("申请延期还款（宽限展期）")), ("plan", _("申请将逾期金额分期偿还"))]
    kind = forms.ChoiceField(label=_("申请类型"), choices=KINDS, widget=forms.RadioSelect)
    n_instalments = forms.IntegerField(label=_("希望分几期（分期计划）"), min_value=2, max_value=36, required=False)
    defer_to = forms.DateField(label=_("希望延期至（延期还款）"), required=False,
                               widget=forms.DateInput(attrs={"type": "date"}))
    reason = forms.CharField(label=_("困难说明"), max_length=2000, widget=forms.Textarea(attrs={"rows": 4}))

    def clean(self):
        data = super().clean()
        if data.get("kind") == "plan" and not data.get("n_instalments"):
            self.add_error("n_instalments", _("请填写希望分几期"))
        if data.get("kind") == "deferral" and not data.get("defer_to"):
            self.add_error("defer_to", _("请填写希望延期到哪一天"))
        return data

import pgtrigger
from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from .fields import MoneyField


class Account(models.TextChoices):
    """Chart of accounts. Loan-level accounts carry the loan on the line; clearing accounts may too."""

    PRINCIPAL_RECEIVABLE = "principal_receivable", _("应收本金")
    INTEREST_RECEIVABLE = "interest_receivable", _("应收利息")
    FEE_RECEIVABLE = "fee_receivable", _("应收费用")
    PENALTY_RECEIVABLE = "penalty_receivable", _("应收罚息")
    COMPOUND_RECEIVABLE = "compound_receivable", _("应收复利")
    CREDIT_BALANCE = "credit_balance", _("借款人挂账（负债）")
    REFUND_PAYABLE = "refund_payable", _("待退款（负债）")
    INTEREST_INCOME = "interest_income", _("利息收入")
    FEE_INCOME = "fee_income", _("手续费收入")
    PENALTY_INCOME = "penalty_income", _("罚息收入")
    COMPOUND_INCOME = "compound_income", _("复利收入")
    WAIVER_EXPENSE = "waiver_expense", _("减免支出")
    WRITEOFF_EXPENSE = "writeoff_expense", _("核销损失")
    DISBURSEMENT_CLEARING = "disbursement_clearing", _("放款清算")
    CLEARING_BANK = "clearing_bank", _("银行代扣清算")
    CLEARING_GATEWAY = "clearing_gateway", _("支付网关清算")
    CLEARING_COUNTER = "clearing_counter", _("柜面清算")
    CLEARING_TRANSFER = "clearing_transfer", _("转账清算")


# written by nearly every payment and billing entry
BULK_ACCOUNTS = [Account.CLEARING_BANK, Account.PRINCIPAL_RECEIVABLE, Account.INTEREST_RECEIVABLE,
                 Account.INTEREST_INCOME]

RECEIVABLE_BY_COMPONENT = {
    "principal": Account.PRINCIPAL_RECEIVABLE,
    "interest": Account.INTEREST_RECEIVABLE,
    "fee": Account.FEE_RECEIVABLE,
    "penalty": Account.PENALTY_RECEIVABLE,
    "compound": Account.COMPOUND_RECEIVABLE,
}
INCOME_BY_COMPONENT = {
    "interest": Account.INTEREST_INCOME,
    "fee": Account.FEE_INCOME,
    "penalty": Account.PENALTY_INCOME,
    "compound": Account.COMPOUND_INCOME,
}
CLEARING_BY_CHANNEL = {
    "bank": Account.CLEARING_BANK,
    "gateway": Account.CLEARING_GATEWAY,
    "counter": Account.CLEARING_COUNTER,
    "transfer": Account.CLEARING_TRANSFER,
}


class EntryKind(models.TextChoices):
    DISBURSEMENT = "disbursement", _("放款")
    BILLING = "billing", _("利息费用到期确认")
    ACCRUAL = "accrual", _("罚息复利计提")
    PAYMENT = "payment", _("还款")
    CREDIT_APPLICATION = "credit_application", _("挂账冲抵")
    WAIVER = "waiver", _("减免")
    REVERSAL = "reversal", _("冲正")
    REFUND = "refund", _("退款")
    WRITEOFF = "writeoff", _("核销")
    RESCHEDULE = "reschedule", _("重排")


@pgtrigger.register(pgtrigger.Protect(name="journal_entry_append_only", operation=pgtrigger.Update | pgtrigger.Delete))
class JournalEntry(models.Model):
    """A balanced double-entry posting. Never edited: a correction is a reversing entry.

    The references of the ledger, payment, allocation, attempt and notice rows (written by the hundred thousand
    in an import) are checked set-based, once per statement, instead of by per-row foreign keys
    (`db_constraint=False`; see servicing.references and migration 0008).
    """

    kind = models.CharField(max_length=20, choices=EntryKind.choices)
    loan = models.ForeignKey("servicing.Loan", null=True, blank=True, on_delete=models.PROTECT,
                             related_name="journal_entries", db_constraint=False, db_index=False)  # entry_loan_date_idx
    value_date = models.DateField()
    idempotency_key = models.CharField(max_length=120)
    memo = models.CharField(max_length=200, blank=True)
    # reversed at most once (entry_reversed_once): a partial unique index, so the million entries that reverse
    # nothing add nothing to it
    reverses = models.ForeignKey("self", null=True, blank=True, on_delete=models.PROTECT, related_name="reversed_by",
                                 db_index=False)
    created_at = models.DateTimeField(auto_now_add=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT,
                                   db_index=False)

    class Meta:
        verbose_name = _("会计分录")
        verbose_name_plural = _("会计分录")
        constraints = [models.UniqueConstraint(fields=["idempotency_key"], name="entry_idempotency_key_unique"),
                       models.UniqueConstraint(fields=["reverses"], condition=Q(reverses__isnull=False),
                                               name="entry_reversed_once")]
        indexes = [models.Index(fields=["loan", "value_date"], name="entry_loan_date_idx"),
                   models.Index(fields=["created_by"], condition=Q(created_by__isnull=False), name="entry_created_by_idx")]

    def __str__(self) -> str:
        return f"{self.kind} {self.value_date} #{self.pk}"


@pgtrigger.register(pgtrigger.Protect(name="journal_line_append_only", operation=pgtrigger.Update | pgtrigger.Delete))
class JournalLine(models.Model):
    """One leg of an entry: positive = debit, negative = credit. An entry's lines sum to zero
    (enforced by a deferred constraint trigger at commit, see migration 0002)."""

    entry = models.ForeignKey(JournalEntry, on_delete=models.PROTECT, related_name="lines", db_constraint=False)
    loan = models.ForeignKey("servicing.Loan", null=True, blank=True, on_delete=models.PROTECT,
                             related_name="journal_lines", db_constraint=False, db_index=False)  # line_loan_account_idx
    account = models.CharField(max_length=32, choices=Account.choices)
    amount = MoneyField()

    class Meta:
        verbose_name = _("分录行")
        verbose_name_plural = _("分录行")
        constraints = [models.CheckConstraint(condition=~Q(amount=0), name="journal_line_not_zero")]
        # the account filter of the console: the accounts nearly every payment and billing entry writes are found
        # at once walking the newest lines; the index holds only the others (3 in 4 lines are of those)
        indexes = [models.Index(fields=["loan", "account"], name="line_loan_account_idx"),
                   models.Index(fields=["account"], name="line_rare_account_idx", condition=~Q(account__in=BULK_ACCOUNTS))]

    def __str__(self) -> str:
        return f"{self.account} {self.amount}"

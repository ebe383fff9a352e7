from django.db import transaction

from servicing.domain.money import MoneyError, parse_amount
from servicing.management.base import RepayCommand, bad_usage, date_arg, decimal_arg, positive_int_arg
from servicing.models import Channel, LoanProduct
from servicing.services import reference_data
from servicing.services.loans import book_loan, get_or_create_borrower
from servicing.services.mandates import activate_mandate, sign_mandate


class Command(RepayCommand):
    help = "Book a disbursed loan with its schedule (and an active mandate when an account is given)"
    json_option = True

    def add_arguments(self, parser):
        parser.add_argument("--product", required=True)
        parser.add_argument("--borrower-name", required=True)
        parser.add_argument("--id-number", required=True)
        parser.add_argument("--phone", required=True)
        parser.add_argument("--principal", required=True)
        parser.add_argument("--months", required=True, type=positive_int_arg)
        parser.add_argument("--start", required=True, type=date_arg)
        parser.add_argument("--annual-rate", type=decimal_arg)
        parser.add_argument("--repayment-day", type=int)
        parser.add_argument("--method")
        parser.add_argument("--account-no")
        parser.add_argument("--bank-code")
        parser.add_argument("--channel")

    def handle(self, *args, **o):
        reference_data.ensure()
        product = LoanProduct.objects.filter(code=o["product"]).first()
        if product is None:
            codes = ", ".join(LoanProduct.objects.values_list("code", flat=True))
            raise bad_usage(f"product: '{o['product']}' is not a product code ({codes})")
        try:
            principal = parse_amount(o["principal"])
        except MoneyError as exc:
            raise bad_usage(f"principal: {exc}") from exc
        account = [o["account_no"], o["bank_code"], o["channel"]]
        if any(account) and not all(account):
            raise bad_usage("account-no, bank-code and channel go together: give all three or none")
        channel = None
        if o["channel"]:
            channel = Channel.objects.filter(code=o["channel"]).first()
            if channel is None:
                raise bad_usage(f"channel: '{o['channel']}' is not a channel code")
        with transaction.atomic():
            borrower = get_or_create_borrower(name=o["borrower_name"], id_number=o["id_number"], phone=o["phone"])
            loan = book_loan(product=product, borrower=borrower, principal=principal, months=o["months"],
                             start=o["start"], annual_rate_pct=o["annual_rate"], repayment_day=o["repayment_day"],
                             method=o["method"])
            if channel:
                mandate = sign_mandate(loan=loan, channel=channel, account_no=o["account_no"],
                                       account_name=borrower.name, bank_code=o["bank_code"])
                activate_mandate(mandate)
        self.emit(o, {"contract_no": loan.contract_no}, loan.contract_no)

from servicing.management.base import RepayCommand, bad_usage, date_arg
from servicing.models import Loan
from servicing.selectors import quote_payoff


class Command(RepayCommand):
    help = "What settles the loan on a date"
    json_option = True

    def add_arguments(self, parser):
        parser.add_argument("contract_no")
        parser.add_argument("--date", required=True, type=date_arg)

    def handle(self, *args, **o):
        loan = Loan.objects.select_related("product").filter(contract_no=o["contract_no"]).first()
        if loan is None:
            raise bad_usage(f"contract: '{o['contract_no']}' is not a known contract number")
        if o["date"] < loan.disbursed_on:
            raise bad_usage(f"date: {o['date']} is before the disbursement on {loan.disbursed_on}")
        quote = quote_payoff(loan, o["date"]).as_json()
        text = "\n".join(f"{k:>15}: {v}" for k, v in quote.items())
        self.emit(o, quote, text)

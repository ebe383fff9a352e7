from servicing.domain.money import format_amount
from servicing.management.base import RepayCommand, bad_usage, date_arg
from servicing.models import Loan
from servicing.services.payments import post_payment


class Command(RepayCommand):
    help = "Post an active repayment (idempotent on --ref)"
    json_option = True

    def add_arguments(self, parser):
        parser.add_argument("--contract", required=True)
        parser.add_argument("--amount", required=True)
        parser.add_argument("--channel", required=True, choices=["counter", "transfer"])
        parser.add_argument("--value-date", required=True, type=date_arg)
        parser.add_argument("--ref", required=True)
        parser.add_argument("--prepay", choices=["payoff", "shorten", "reduce"], default="")

    def handle(self, *args, **o):
        loan = Loan.objects.filter(contract_no=o["contract"]).first()
        if loan is None:
            raise bad_usage(f"contract: '{o['contract']}' is not a known contract number")
        result = post_payment(loan=loan, amount=o["amount"], channel=o["channel"], value_date=o["value_date"],
                              reference=o["ref"], prepay=o["prepay"])
        p = result.payment
        loan.refresh_from_db()
        data = {"reference": p.reference, "contract_no": loan.contract_no, "amount": format_amount(p.amount),
                "applied": format_amount(p.applied_amount), "credited": format_amount(p.credited_amount),
                "created": result.created, "settled": loan.status == "settled", "loan_status": loan.status}
        text = (f"{'posted' if result.created else 'already posted'} {p.reference}: {data['amount']} "
                f"(applied {data['applied']}, credit {data['credited']}); loan {loan.status}")
        self.emit(o, data, text)

from servicing.management.base import RepayCommand, bad_usage
from servicing.models import Loan
from servicing.selectors import loan_status


class Command(RepayCommand):
    help = "The loan as an operator sees it"
    json_option = True

    def add_arguments(self, parser):
        parser.add_argument("contract_no")

    def handle(self, *args, **o):
        loan = Loan.objects.select_related("product", "borrower").filter(contract_no=o["contract_no"]).first()
        if loan is None:
            raise bad_usage(f"contract: '{o['contract_no']}' is not a known contract number")
        data = loan_status(loan)
        out = data["outstanding"]
        lines = [f"{loan.contract_no}  {loan.product.name}  {loan.borrower.masked_name}",
                 f"status {data['status']}  DPD {data['dpd']}  settled_on {data['settled_on'] or '-'}",
                 f"outstanding total {out['total']} (principal {out['principal']}, interest {out['interest']}, "
                 f"penalty {out['penalty']}, compound {out['compound']}, fees {out['fees']})",
                 f"overdue total {data['overdue']['total']}  credit balance {data['credit_balance']}",
                 "seq  due_date    principal   interest  fee      penalty  paid       status"]
        lines += [f"{i['seq']:>3}  {i['due_date']}  {i['principal']:>10} {i['interest']:>10} {i['fee']:>7} "
                  f"{i['penalty']:>8} {i['paid']:>10}  {i['status']}" for i in data["instalments"]]
        self.emit(o, data, "\n".join(lines))

from notices.selectors import notice_log
from servicing.management.base import RepayCommand, bad_usage
from servicing.models import Loan


class Command(RepayCommand):
    help = "What the borrower was told about a loan, oldest first"
    json_option = True

    def add_arguments(self, parser):
        parser.add_argument("contract_no")

    def handle(self, *args, **o):
        loan = Loan.objects.filter(contract_no=o["contract_no"]).first()
        if loan is None:
            raise bad_usage(f"contract: '{o['contract_no']}' is not a known contract number")
        rows = notice_log(loan)
        lines = [f"{r['scheduled_for'][:16]}  {r['event']:<20} {r['channel']:<7} {r['status']:<10} "
                 f"{(r['sent_at'] or '-')[:16]}  {r.get('reason', '')}".rstrip() for r in rows]
        self.emit(o, {"notices": rows}, "\n".join(lines) or "no notices")

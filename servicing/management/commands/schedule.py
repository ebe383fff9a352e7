import csv
from decimal import Decimal

from servicing.domain.money import MoneyError, format_amount, parse_amount
from servicing.domain.schedule import Method, ScheduleError, build_schedule
from servicing.management.base import RepayCommand, bad_usage, date_arg, decimal_arg, positive_int_arg


class Command(RepayCommand):
    help = "Print a repayment schedule as CSV: seq,due_date,principal,interest,fee,total,balance_after"

    def add_arguments(self, parser):
        parser.add_argument("--method", required=True, choices=[m.value for m in Method])
        parser.add_argument("--principal", required=True)
        parser.add_argument("--annual-rate", required=True, type=decimal_arg, help="percent, e.g. 4.9")
        parser.add_argument("--months", required=True, type=positive_int_arg)
        parser.add_argument("--start", required=True, type=date_arg)
        parser.add_argument("--repayment-day", type=int)
        parser.add_argument("--fee-rate", type=decimal_arg, default=None, help="percent per period (flat_fee)")

    def handle(self, *args, **o):
        try:
            principal = parse_amount(o["principal"])
        except MoneyError as exc:
            raise bad_usage(f"principal: {exc}") from exc
        if o["annual_rate"] < 0 or o["annual_rate"] > 100:
            raise bad_usage(f"annual-rate: {o['annual_rate']} is not a percentage between 0 and 100")
        fee = o["fee_rate"]
        if fee is not None and o["method"] != Method.FLAT_FEE:
            raise bad_usage("fee-rate: only the flat_fee method charges a fee per period")
        try:
            lines = build_schedule(Method(o["method"]), principal, o["annual_rate"] / 100, o["months"], o["start"],
                                   repayment_day=o["repayment_day"], fee_rate=(fee or Decimal(0)) / 100)
        except ScheduleError as exc:
            raise bad_usage(str(exc)) from exc
        writer = csv.writer(self.stdout, lineterminator="\n")
        writer.writerow(["seq", "due_date", "principal", "interest", "fee", "total", "balance_after"])
        for line in lines:
            writer.writerow([line.seq, line.due_date.isoformat(),
                             *map(format_amount, (line.principal, line.interest, line.fee, line.total,
                                                  line.balance_after))])

from servicing.management.base import RepayCommand, bad_usage, date_arg
from servicing.services.business_day import run_business_day


class Command(RepayCommand):
    help = "Run the day's cycle for a business date (idempotent: a second run changes nothing)"
    json_option = True

    def add_arguments(self, parser):
        parser.add_argument("--date", required=True, type=date_arg)
        parser.add_argument("--through", type=date_arg, help="run every date from --date through this one")

    def handle(self, *args, **o):
        end = o["through"] or o["date"]
        if end < o["date"]:
            raise bad_usage("through: must not be before --date")
        results = []
        day = o["date"]
        from datetime import timedelta

        while day <= end:
            results.append(run_business_day(day))
            day += timedelta(days=1)
        data = results[0] if len(results) == 1 else {"days": results}
        text = "\n".join(f"{r['date']}: {r['seconds']} s " + ", ".join(
            f"{k}={v}" for step in r["steps"].values() for k, v in step.items() if k != "seconds") for r in results)
        self.emit(o, data, text)

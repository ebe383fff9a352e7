from pathlib import Path

from servicing.management.base import RepayCommand, bad_usage, date_arg, rejected
from servicing.models import Channel
from servicing.services.debits.results import import_debit_results, summary_text


class Command(RepayCommand):
    help = "Import a bank result file (once per file; bad structure → exit 3, nothing applied)"
    json_option = True

    def add_arguments(self, parser):
        parser.add_argument("path", metavar="PATH")
        parser.add_argument("--channel", required=True, metavar="CODE")
        parser.add_argument("--date", type=date_arg, help="business date of the import (default: the batch's)")
        parser.add_argument("--dry-run", action="store_true", help="validate and show the summary, apply nothing")

    def handle(self, *args, **o):
        channel = Channel.objects.filter(code=o["channel"]).first()
        if channel is None:
            raise bad_usage(f"channel: '{o['channel']}' is not a channel code")
        if not Path(o["path"]).is_file():
            raise bad_usage(f"path: '{o['path']}' is not a readable file")
        summary = import_debit_results(o["path"], channel=channel, business_date=o["date"], dry_run=o["dry_run"])
        self.emit(o, summary, summary_text(summary))
        if summary["status"] == "rejected":
            raise rejected("; ".join(summary["errors"]))

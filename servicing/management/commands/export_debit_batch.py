from servicing.management.base import RepayCommand, bad_usage
from servicing.models import DebitBatch
from servicing.services.debits.batches import export_debit_batch


class Command(RepayCommand):
    help = "Write a debit batch in its channel's profile layout and mark it exported"
    json_option = True

    def add_arguments(self, parser):
        parser.add_argument("batch", metavar="REF")
        parser.add_argument("--out", required=True, metavar="PATH")

    def handle(self, *args, **o):
        batch = DebitBatch.objects.filter(reference=o["batch"]).first()
        if batch is None:
            raise bad_usage(f"batch: '{o['batch']}' is not a batch reference")
        data = export_debit_batch(batch, o["out"])
        self.emit(o, data, f"exported {data['batch']}: {data['count']} debits, {data['amount']} → {data['path']}")

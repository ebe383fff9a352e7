from servicing.domain.money import format_amount
from servicing.management.base import RepayCommand, bad_usage, date_arg
from servicing.models import Channel
from servicing.services.debits.batches import create_debit_batch


class Command(RepayCommand):
    help = "Build (or return the existing) debit batch of what is due on --date through --channel"
    json_option = True

    def add_arguments(self, parser):
        parser.add_argument("--date", required=True, type=date_arg)
        parser.add_argument("--channel", required=True)

    def handle(self, *args, **o):
        channel = Channel.objects.filter(code=o["channel"]).first()
        if channel is None:
            raise bad_usage(f"channel: '{o['channel']}' is not a channel code")
        result = create_debit_batch(o["date"], channel)
        data = {"batch": result.batch.reference, "count": result.count, "amount": format_amount(result.amount),
                "created": result.created}
        self.emit(o, data, f"{'created' if result.created else 'existing'} batch {result.batch.reference}: "
                           f"{result.count} debits, {format_amount(result.amount)}")

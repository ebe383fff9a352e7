from servicing.management.base import RepayCommand, bad_usage, rejected
from servicing.models import Channel
from servicing.services.debits.profiles import ProfileError, export_profile, import_profile_file


class Command(RepayCommand):
    help = "bank_profile import PATH | bank_profile export CODE: load or print a channel's profile (JSON v1)"

    def add_arguments(self, parser):
        parser.add_argument("action", choices=["import", "export"])
        parser.add_argument("target", metavar="PATH|CODE")

    def handle(self, *args, **o):
        if o["action"] == "export":
            channel = Channel.objects.filter(code=o["target"]).first()
            if channel is None:
                raise bad_usage(f"code: '{o['target']}' is not a channel code")
            self.stdout.write(export_profile(channel))
            return
        try:
            channel, created = import_profile_file(o["target"])
        except ProfileError as exc:
            raise rejected(str(exc)) from exc
        self.stdout.write(f"{'created' if created else 'updated'} channel {channel.code}")

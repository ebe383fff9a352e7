from django.core.management.base import CommandError

from servicing.management.base import EXIT_CHECK_FAILED, RepayCommand
from servicing.services.verify import verify_books


class Command(RepayCommand):
    help = "Check every ledger invariant; exit 1 with the broken ones listed"
    json_option = True

    def handle(self, *args, **o):
        results = verify_books()
        broken = [r for r in results if not r.ok]
        data = {"ok": not broken,
                "checks": [{"name": r.name, "ok": r.ok, "description": r.description, "examples": r.examples}
                           for r in results]}
        text = "\n".join(f"{'ok    ' if r.ok else 'BROKEN'} {r.name}: {r.description}"
                         + ("".join(f"\n         {e}" for e in r.examples) if not r.ok else "") for r in results)
        self.emit(o, data, text)
        if broken:
            raise CommandError(f"{len(broken)} invariant(s) broken: {', '.join(r.name for r in broken)}",
                               returncode=EXIT_CHECK_FAILED)

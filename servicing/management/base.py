"""Shared behaviour of RepayDesk commands (contracts.md): --json prints one object on stdout, logs go to
stderr; exit 0 done, 1 a check failed, 2 bad usage or arguments, 3 input rejected. Errors are one line."""

from __future__ import annotations

import argparse
import json
import sys
from datetime import date
from decimal import Decimal, InvalidOperation

from django.core.management.base import BaseCommand, CommandError, CommandParser

EXIT_CHECK_FAILED = 1
EXIT_BAD_USAGE = 2
EXIT_REJECTED = 3


class _OneLineParser(CommandParser):
    def error(self, message):
        if self.called_from_command_line:
            sys.stderr.write(f"error: {message}\n")
            sys.exit(EXIT_BAD_USAGE)
        raise CommandError(f"error: {message}", returncode=EXIT_BAD_USAGE)


def bad_usage(message: str) -> CommandError:
    return CommandError(message, returncode=EXIT_BAD_USAGE)


def rejected(message: str) -> CommandError:
    return CommandError(message, returncode=EXIT_REJECTED)


def date_arg(value: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{value}' is not a date (YYYY-MM-DD)") from None


def decimal_arg(value: str) -> Decimal:
    try:
        d = Decimal(value)
    except InvalidOperation:
        raise argparse.ArgumentTypeError(f"'{value}' is not a number") from None
    if not d.is_finite():
        raise argparse.ArgumentTypeError(f"'{value}' is not a number")
    return d


def positive_int_arg(value: str) -> int:
    try:
        n = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{value}' is not a whole number") from None
    if n < 1:
        raise argparse.ArgumentTypeError(f"'{value}' must be at least 1")
    return n


class RepayCommand(BaseCommand):
    json_option = False

    def create_parser(self, prog_name, subcommand, **kwargs):
        kwargs.setdefault("formatter_class", argparse.HelpFormatter)
        parser = super().create_parser(prog_name, subcommand, **kwargs)
        parser.__class__ = _OneLineParser
        if self.json_option:
            parser.add_argument("--json", action="store_true", help="print one JSON object on stdout")
        return parser

    def emit(self, options, data: dict, text: str | None = None) -> None:
        if options.get("json"):
            self.stdout.write(json.dumps(data, ensure_ascii=False, default=str))
        else:
            self.stdout.write(text if text is not None else json.dumps(data, ensure_ascii=False, indent=2,
                                                                       default=str))

    def execute(self, *args, **options):
        try:
            return super().execute(*args, **options)
        except CommandError:
            raise
        except ValueError as exc:  # domain errors name the field at fault
            raise bad_usage(str(exc)) from exc

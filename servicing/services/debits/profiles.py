"""Bank file profiles (contracts.md, v1): layouts are data. Validate, import, export.

A profile says, for the debit file and the result file: encoding, delimiter, header row and column names,
amount unit, date format, line ending, optional trailer; and for results, status words and code → category.
"""

from __future__ import annotations

import codecs
import json
from dataclasses import dataclass
from pathlib import Path

from django.db import transaction

from servicing.models import Channel
from servicing.services import audit

from .policy import CATEGORIES

DEBIT_FIELDS = ("reference", "batch_ref", "seq", "contract_no", "borrower_name", "account_name", "account_no",
                "bank_code", "amount", "currency", "due_date")
RESULT_FIELDS = ("reference", "amount", "status", "code", "message", "settled_on", "channel_txn_id", "account_no")
RESULT_REQUIRED = ("reference", "amount", "status")
OUTCOMES = ("succeeded", "failed", "unknown")
DATE_TOKENS = {"%Y": ("YYYY", r"\d{4}"), "%m": ("MM", r"\d{2}"), "%d": ("DD", r"\d{2}")}


class ProfileError(ValueError):
    """A profile that cannot be used; the message says which key is wrong."""


@dataclass(frozen=True)
class FileLayout:
    encoding: str
    delimiter: str
    header: bool
    amount_unit: str
    date_format: str
    line_ending: str
    columns: tuple[tuple[str, str], ...]  # (field, header)
    trailer: dict | None

    @property
    def fields(self) -> list[str]:
        return [f for f, _ in self.columns]

    @property
    def headers(self) -> list[str]:
        return [h for _, h in self.columns]


def _layout(section: dict, where: str, allowed: tuple[str, ...], required: tuple[str, ...]) -> FileLayout:
    if not isinstance(section, dict):
        raise ProfileError(f"{where}: must be an object")
    encoding = section.get("encoding", "utf-8")
    try:
        codecs.lookup(encoding)
    except (LookupError, TypeError):
        raise ProfileError(f"{where}.encoding: '{encoding}' is not a codec Python knows") from None
    delimiter = section.get("delimiter", ",")
    if not isinstance(delimiter, str) or len(delimiter) != 1 or delimiter in "\r\n\"":
        raise ProfileError(f"{where}.delimiter: must be one character other than a quote or line break")
    unit = section.get("amount_unit", "yuan")
    if unit not in ("yuan", "fen"):
        raise ProfileError(f"{where}.amount_unit: '{unit}' is not yuan or fen")
    date_format = section.get("date_format", "%Y-%m-%d")
    rest = date_format
    for token in DATE_TOKENS:
        if token not in rest:
            raise ProfileError(f"{where}.date_format: '{date_format}' must contain %Y, %m and %d")
        rest = rest.replace(token, "")
    if "%" in rest:
        raise ProfileError(f"{where}.date_format: only %Y, %m and %d are supported")
    line_ending = section.get("line_ending", "\n")
    if line_ending not in ("\n", "\r\n"):
        raise ProfileError(f"{where}.line_ending: must be \\n or \\r\\n")
    columns = section.get("columns")
    if not isinstance(columns, list) or not columns:
        raise ProfileError(f"{where}.columns: a non-empty list of {{field, header}} is required")
    out = []
    for i, col in enumerate(columns):
        if not isinstance(col, dict) or col.get("field") not in allowed:
            raise ProfileError(f"{where}.columns[{i}].field: must be one of {', '.join(allowed)}")
        header = col.get("header", col["field"])
        if not isinstance(header, str) or not header.strip():
            raise ProfileError(f"{where}.columns[{i}].header: must be a non-empty string")
        out.append((col["field"], header))
    fields = [f for f, _ in out]
    dup = {f for f in fields if fields.count(f) > 1}
    if dup:
        raise ProfileError(f"{where}.columns: field(s) listed twice: {', '.join(sorted(dup))}")
    missing = [f for f in required if f not in fields]
    if missing:
        raise ProfileError(f"{where}.columns: required field(s) missing: {', '.join(missing)}")
    trailer = section.get("trailer")
    if trailer is not None and (not isinstance(trailer, dict) or not isinstance(trailer.get("prefix"), str)):
        raise ProfileError(f"{where}.trailer: must be an object with a 'prefix' string")
    return FileLayout(encoding, delimiter, bool(section.get("header", True)), unit, date_format, line_ending,
                      tuple(out), trailer)


def validate_profile(profile: dict) -> dict:
    """Check a profile JSON (v1). Returns it unchanged, or raises ProfileError naming the key at fault."""
    if not isinstance(profile, dict):
        raise ProfileError("profile: must be a JSON object")
    code = profile.get("code")
    if not isinstance(code, str) or not code.strip() or len(code) > 40:
        raise ProfileError("code: a channel code of 1–40 characters is required")
    if not isinstance(profile.get("name", ""), str) or not profile.get("name"):
        raise ProfileError("name: required")
    if profile.get("version", 1) != 1:
        raise ProfileError(f"version: {profile.get('version')} is not supported (v1)")
    _layout(profile.get("debit_file"), "debit_file", DEBIT_FIELDS, ("reference", "amount"))
    result = profile.get("result_file")
    _layout(result, "result_file", RESULT_FIELDS, RESULT_REQUIRED)
    statuses = result.get("status_values")
    if not isinstance(statuses, dict) or not statuses:
        raise ProfileError("result_file.status_values: a map of status word → succeeded/failed/unknown is required")
    for word, outcome in statuses.items():
        if outcome not in OUTCOMES:
            raise ProfileError(f"result_file.status_values['{word}']: '{outcome}' is not one of {', '.join(OUTCOMES)}")
    codes = result.get("codes", {})
    if not isinstance(codes, dict):
        raise ProfileError("result_file.codes: must be a map of code → category")
    for code_, category in codes.items():
        if category != "success" and category not in CATEGORIES:
            raise ProfileError(f"result_file.codes['{code_}']: '{category}' is not a category "
                               f"(success, {', '.join(CATEGORIES)})")
    return profile


def debit_layout(channel: Channel) -> FileLayout:
    return _layout(channel.profile.get("debit_file"), "debit_file", DEBIT_FIELDS, ("reference", "amount"))


def result_layout(channel: Channel) -> FileLayout:
    return _layout(channel.profile.get("result_file"), "result_file", RESULT_FIELDS, RESULT_REQUIRED)


def pg_date_format(date_format: str) -> tuple[str, str]:
    """(to_char/to_date pattern, validating regex) for a strftime format made of %Y %m %d and literals."""
    pattern, regex, i = "", "", 0
    while i < len(date_format):
        token = date_format[i:i + 2]
        if token in DATE_TOKENS:
            pattern += DATE_TOKENS[token][0]
            regex += DATE_TOKENS[token][1]
            i += 2
        else:
            ch = date_format[i]
            pattern += f'"{ch}"' if ch.isalpha() else ch
            regex += "\\" + ch if not ch.isalnum() else ch
            i += 1
    return pattern, f"^{regex}$"


@transaction.atomic
def import_profile(profile: dict, *, user=None) -> tuple[Channel, bool]:
    """Create or update the channel of a validated profile. Returns (channel, created)."""
    validate_profile(profile)
    channel, created = Channel.objects.select_for_update().get_or_create(
        code=profile["code"], defaults={"name": profile["name"], "profile": profile,
                                        "profile_version": profile.get("version", 1)})
    if not created:
        channel.name = profile["name"]
        channel.profile = profile
        channel.profile_version = profile.get("version", 1)
        channel.save(update_fields=["name", "profile", "profile_version"])
    audit.record("channel.profile_imported", channel, actor=user, created=created)
    return channel, created


def import_profile_file(path: str | Path, *, user=None) -> tuple[Channel, bool]:
    try:
        profile = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ProfileError(f"{path}: not a readable JSON file ({exc})") from exc
    return import_profile(profile, user=user)


def export_profile(channel: Channel) -> str:
    return json.dumps(channel.profile, ensure_ascii=False, indent=1)

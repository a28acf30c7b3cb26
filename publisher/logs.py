"""Logging set-up, and the guarantee that no secret value is ever written out."""

from __future__ import annotations

import json
import logging
import re
from datetime import UTC, datetime

#: last_error is for people: one short line.
MAX_ERROR_CHARS = 500
#: user:password@ in any URL an exception may quote.
URL_PASSWORD = re.compile(r"(?<=://)([^/\s:@]+):([^/\s@]+)@")
#: password=... as a libpq keyword or a URL query parameter.
PASSWORD_PARAM = re.compile(r"(?i)(\bpassword\s*=\s*)('[^']*'|[^\s&'\",;)]+)")
#: Authorization headers in dumps of requests.
AUTH_HEADER = re.compile(r"(?i)(bearer\s+|authorization['\"]?\s*[:=]\s*['\"]?)([^\s'\",}]+)")
REDACTED = "[redacted]"
#: Secrets shorter than this are redacted only where they stand alone, not inside
#: other words: "7" must not blank every 7 in the logs.
SHORT_SECRET = 4


#: A query value of a configured URL this long is taken for a credential; a shorter
#: one (v=2, format=json) is common text that must not be blanked everywhere.
URL_VALUE_SECRET = 8


class Redactor:
    def __init__(self, secrets=()):
        self._forms: set[str] = set()
        self.secrets: list[str] = []
        self._short = None
        self.extend(secrets)

    def extend(self, secrets) -> None:
        """Adds secrets (e.g. the listener's webhook URL, read after logging was set up)."""
        self._forms |= {form for s in secrets if s for form in _forms(s)}
        self.secrets = sorted((s for s in self._forms if len(s) >= SHORT_SECRET), key=len, reverse=True)
        short = sorted((s for s in self._forms if len(s) < SHORT_SECRET), key=len, reverse=True)
        self._short = re.compile("|".join(rf"(?<![A-Za-z0-9]){re.escape(s)}(?![A-Za-z0-9])" for s in short)) \
            if short else None

    def __call__(self, text: str) -> str:
        for secret in self.secrets:
            text = text.replace(secret, REDACTED)
        if self._short is not None:
            text = self._short.sub(REDACTED, text)
        text = URL_PASSWORD.sub(lambda m: f"{m.group(1)}:{REDACTED}@", text)
        text = PASSWORD_PARAM.sub(lambda m: m.group(1) + REDACTED, text)
        return AUTH_HEADER.sub(lambda m: m.group(1) + REDACTED, text)


def _forms(secret: str) -> set[str]:
    """A secret as it may be quoted: as is, percent-decoded, percent-encoded."""
    from urllib.parse import quote, quote_plus, unquote

    plain = unquote(secret)
    return {secret, plain, quote(plain, safe=""), quote_plus(plain, safe="")}


def url_secrets(url: str, *, path: bool = False) -> tuple[str, ...]:
    """The parts of a configured URL that may be credentials: its userinfo (user and
    password), its query string and fragment whole, and each long query value; with
    `path`, its path too, for URLs whose credential is the path (Slack's, Teams' and
    Discord's webhooks: /services/T…/B…/<token>)."""
    from urllib.parse import parse_qsl, urlsplit

    if not url:
        return ()
    try:
        parts = urlsplit(url)
    except ValueError:  # unreadable: all of it may be a secret
        return (url,)
    userinfo = parts.netloc.rpartition("@")[0] if "@" in parts.netloc else ""
    user, _, password = userinfo.partition(":")
    values = [v for _, v in parse_qsl(parts.query, keep_blank_values=True) if len(v) >= URL_VALUE_SECRET]
    shown_path = parts.path if path and parts.path.strip("/") else ""
    return tuple(s for s in (userinfo, user, password, shown_path, parts.query, parts.fragment, *values) if s)


def url_origin(url: str) -> str:
    """scheme://host[:port] of a URL: all of it that may be shown when the rest may be a credential."""
    from urllib.parse import urlsplit

    try:
        parts = urlsplit(url)
        host, port = parts.hostname, parts.port
    except ValueError:
        return REDACTED
    if not parts.scheme or not host:
        return REDACTED
    host = f"[{host}]" if ":" in host else host
    return f"{parts.scheme}://{host}" + (f":{port}" if port is not None else "")


def bounded(text: str, redact: Redactor, limit: int = MAX_ERROR_CHARS) -> str:
    """One line of at most `limit` characters, redacted first: cut first, a secret
    could be left in part where no pattern recognises it."""
    text = " ".join(redact(text).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def configure_for(settings) -> Redactor:
    """configure() with a process's settings: every command that logs calls this first."""
    return configure(settings.log_level, settings.secrets, settings.log_format)


#: Fields of a job event (see job_fields); JSON lines carry them as keys.
JOB_FIELDS = ("event", "job_id", "file_id", "stage", "duration_s", "error")


def job_fields(job_id, file_id, stage, duration: float | None = None, **more) -> dict:
    """`extra=` for a log line about a job: the JSON format turns these into keys."""
    fields = {"job_id": job_id, "file_id": file_id, "stage": stage, **more}
    if duration is not None:
        fields["duration_s"] = round(duration, 3)
    return fields


class JsonFormatter(logging.Formatter):
    """One JSON object per line (LOG_FORMAT=json), for log platforms."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "process": record.process,
            "message": record.getMessage(),
        }
        for key in JOB_FIELDS:
            value = getattr(record, key, None)
            if value is not None:
                entry[key] = value
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            entry["exception"] = record.exc_text
        if record.stack_info:
            entry["stack"] = record.stack_info
        return json.dumps(entry, default=str)


class RedactingFilter(logging.Filter):
    """Rewrites each record, exceptions included, before any handler formats it."""

    def __init__(self, redact: Redactor):
        super().__init__()
        self.redact = redact

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = self.redact(record.getMessage())
        record.args = None
        if record.exc_info:
            record.exc_text = self.redact(logging.Formatter().formatException(record.exc_info))
            record.exc_info = None
        if record.stack_info:
            record.stack_info = self.redact(record.stack_info)
        for key in JOB_FIELDS:  # the JSON format writes these as they are
            value = getattr(record, key, None)
            if isinstance(value, str):
                setattr(record, key, self.redact(value))
        return True


def configure(level: str, secrets=(), fmt: str = "text") -> Redactor:
    """Applies LOG_LEVEL, LOG_FORMAT (text or json) and redaction to the root
    handlers (adding one if there is none, e.g. in the listener)."""
    root = logging.getLogger()
    # One redactor per process: a second configure adds its secrets to the one the handlers use.
    installed = [f for h in root.handlers for f in h.filters if isinstance(f, RedactingFilter)]
    redact = installed[0].redact if installed else Redactor()
    redact.extend(secrets)
    if not root.handlers:
        console = logging.StreamHandler()
        console.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
        root.addHandler(console)
    for handler in root.handlers:
        if fmt == "json":  # also replaces the format of the dramatiq CLI's handler
            handler.setFormatter(JsonFormatter())
        if not any(isinstance(f, RedactingFilter) for f in handler.filters):
            handler.addFilter(RedactingFilter(redact))
    root.setLevel(level.upper())
    # Library chatter at debug level would drown the job lines.
    for noisy in ("urllib3", "dramatiq_pg"):
        logging.getLogger(noisy).setLevel(max(logging.INFO, root.level))
    return redact


def short_error(exc: BaseException, redact: Redactor, prefix: str = "") -> str:
    """One readable line for last_error: no secrets, no traceback, bounded."""
    text = str(exc).strip() or type(exc).__name__
    if not isinstance(exc, (ValueError,)) and type(exc).__module__ not in ("publisher.errors", "builtins"):
        text = f"{type(exc).__name__}: {text}"
    return bounded(prefix + text, redact)

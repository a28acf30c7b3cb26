"""Keeps secrets out of the tracebacks Dramatiq stores in broker messages.

Dramatiq's Retries middleware copies the traceback of a failed attempt into
the message (`options["traceback"]`), and the Postgres broker writes the
message to dramatiq.queue on enqueue, ack and nack, where it stays for
weeks. An exception that quotes a secret would be stored with it; this
middleware redacts the traceback each time the message is about to be
written.
"""

from __future__ import annotations

from dramatiq.middleware import Middleware


class RedactStoredTracebacks(Middleware):
    def __init__(self, runtime_factory):
        self._runtime_factory = runtime_factory

    def _redact(self, message):
        traceback = message.options.get("traceback")
        if traceback:
            message.options["traceback"] = self._runtime_factory().redact(traceback)

    def before_enqueue(self, broker, message, delay):
        self._redact(message)

    def before_ack(self, broker, message):
        self._redact(message)

    def before_nack(self, broker, message):
        self._redact(message)

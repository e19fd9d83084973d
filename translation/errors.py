"""The one error type callers catch when a translation cannot be served, and the reader-facing
note that stands for a failed translation in payloads (a code and the pair, no operator text)."""

from __future__ import annotations

# Why a text reached a reader untranslated (the `code` of a note; docs/protocol.md).
NO_PAIR = "no_pair"  # this server has no engine for the pair (nor a pivot through English)
FAILED = "failed"  # an engine has the pair but failed on this text

TranslationNote = dict[str, str]


def translation_note(code: str, src: str, dst: str) -> TranslationNote:
    """``{"code": code, "from": src, "to": dst}``: what a reader's client needs to say, in the
    reader's own language, why a text is shown untranslated. Never carries operator advice."""
    return {"code": code, "from": src, "to": dst}


def as_note(value: object, src: str, dst: str) -> TranslationNote:
    """A stored `translation_error` value as a note. Entries written before notes existed hold
    the engine's message (operator advice included): they become a bare code, never text."""
    if isinstance(value, dict) and isinstance(value.get("code"), str):
        return translation_note(
            value["code"], str(value.get("from", src)), str(value.get("to", dst))
        )
    code = NO_PAIR if "no translation engine" in str(value) else FAILED
    return translation_note(code, src, dst)


class TranslationUnavailable(Exception):
    """No installed engine serves ``src -> dst``, directly or by pivot through English.

    ``str(exc)`` is for the operator (log, CLI): it names the package to install. Readers get
    :attr:`note` instead."""

    def __init__(
        self, src: str, dst: str, detail: str = "", missing: tuple[str, str] | None = None
    ) -> None:
        self.src = src
        self.dst = dst
        need_src, need_dst = missing or (src, dst)
        hint = (
            f"no translation engine serves {src}->{dst} (directly or through English); "
            f"install one, e.g. `tradetalk models install translate-{need_src}_{need_dst}` "
            f"(an Argos package) or an Apertium pair with apt"
        )
        super().__init__(f"{hint}: {detail}" if detail else hint)

    @property
    def note(self) -> TranslationNote:
        """The reader-facing form: ``{"code": "no_pair", "from": src, "to": dst}``."""
        return translation_note(NO_PAIR, self.src, self.dst)

"""The one error type callers catch when a translation cannot be served."""

from __future__ import annotations


class TranslationUnavailable(Exception):
    """No installed engine serves ``src -> dst``, directly or by pivot through English."""

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

"""How the transcript exports (txt, srt) word a note on a missing translation: in the language
the text was not translated into, since that line is for its readers (an Arabic reader finds
"ar: لم يُترجم (…vi→ar…)", not English). The web client words notes itself (js/strings/app.js);
these are the exports' own, for every interface language (js/languages.js), English otherwise."""

from __future__ import annotations

from translation.errors import NO_PAIR, TranslationNote

# language -> (no engine serves the pair, the engine failed); `{pair}` is e.g. "vi→ar".
WORDING: dict[str, tuple[str, str]] = {
    "en": (
        "not translated (no {pair} translation on this server)",
        "not translated (the {pair} translation failed)",
    ),
    "es": (
        "sin traducir (este servidor no tiene traducción {pair})",
        "sin traducir (falló la traducción {pair})",
    ),
    "zh": (
        "未翻译（本服务器不支持{pair}翻译）",
        "未翻译（{pair}翻译失败）",
    ),
    "fr": (
        "non traduit (pas de traduction {pair} sur ce serveur)",
        "non traduit (la traduction {pair} a échoué)",
    ),
    "de": (
        "nicht übersetzt (dieser Server hat keine Übersetzung {pair})",
        "nicht übersetzt (die Übersetzung {pair} ist fehlgeschlagen)",
    ),
    "pt": (
        "não traduzido (este servidor não traduz {pair})",
        "não traduzido (a tradução {pair} falhou)",
    ),
    "it": (
        "non tradotto (questo server non ha la traduzione {pair})",
        "non tradotto (la traduzione {pair} non è riuscita)",
    ),
    "ru": (
        "не переведено (на этом сервере нет перевода {pair})",
        "не переведено (перевод {pair} не удался)",
    ),
    "ar": (
        "لم يُترجم (لا تتوفر على هذا الخادم ترجمة {pair})",
        "لم يُترجم (فشلت ترجمة {pair})",
    ),
    "tr": (
        "çevrilmedi (bu sunucuda {pair} çevirisi yok)",
        "çevrilmedi ({pair} çevirisi başarısız oldu)",
    ),
    "ja": (
        "未翻訳（このサーバーには{pair}の翻訳がありません）",
        "未翻訳（{pair}の翻訳に失敗しました）",
    ),
    "ko": (
        "번역되지 않음 (이 서버에는 {pair} 번역이 없습니다)",
        "번역되지 않음 ({pair} 번역에 실패했습니다)",
    ),
    "vi": (
        "chưa dịch (máy chủ này không có bản dịch {pair})",
        "chưa dịch (dịch {pair} không thành công)",
    ),
    "hi": (
        "अनुवाद नहीं हुआ (इस सर्वर पर {pair} अनुवाद उपलब्ध नहीं है)",
        "अनुवाद नहीं हुआ ({pair} अनुवाद विफल रहा)",
    ),
    "id": (
        "tidak diterjemahkan (server ini tidak punya terjemahan {pair})",
        "tidak diterjemahkan (terjemahan {pair} gagal)",
    ),
}


def note_text(note: TranslationNote) -> str:
    """A note as the txt/srt exports word it, in the language of `note["to"]` (its base
    language: "zh-TW" reads Chinese): short, for a reader, never operator advice."""
    base = note["to"].lower().replace("_", "-").split("-")[0]
    no_pair, failed = WORDING.get(base, WORDING["en"])
    template = no_pair if note["code"] == NO_PAIR else failed
    return template.format(pair=f"{note['from']}→{note['to']}")

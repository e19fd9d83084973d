// Why a text is shown untranslated, worded for the reader in the interface language.
//
// The server sends a note `{code, from, to}` (docs/protocol.md, "Messages"): `no_pair` when no
// engine on the server serves the pair, `failed` when one failed on this text. The words, and
// the languages' names, come from the catalogue (js/strings/app.js) and Intl.DisplayNames —
// never from the server, so a Korean reader reads Korean and never an operator's command.
import { languageName, t } from "./i18n.js";
import "./strings/app.js";

/** The reader-facing note for a text in `from` read in `to`; `note` is the server's note (or
 * anything else, e.g. an entry stored before notes existed: then a plain "not translated"). */
export function untranslatedText(note, from, to) {
  const known = note && typeof note === "object" && typeof note.code === "string";
  const names = {
    from: languageName((known && note.from) || from),
    to: languageName((known && note.to) || to),
  };
  if (known && note.code === "no_pair") return t("translation.no_pair", names);
  if (known && note.code === "failed") return t("translation.failed", names);
  return t("translation.missing", names);
}

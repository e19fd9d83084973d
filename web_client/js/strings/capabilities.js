// Interface text of the language pickers' capability marks (js/capabilities.js), in the twelve
// trade languages (those the interface does not offer yet fall back to English until it does).
import { addStrings } from "../i18n.js";

addStrings({
  en: { "caps.legend": "🎙 speech is subtitled · ⇄N translated to and from N languages on this server" },
  es: { "caps.legend": "🎙 la voz se subtitula · ⇄N se traduce desde y hacia N idiomas en este servidor" },
  zh: { "caps.legend": "🎙 语音有字幕 · ⇄N 本服务器可与 N 种语言互译" },
  ko: { "caps.legend": "🎙 음성 자막 지원 · ⇄N 이 서버에서 N개 언어와 상호 번역" },
  ja: { "caps.legend": "🎙 音声に字幕が付きます · ⇄N このサーバーで N 言語と相互に翻訳" },
  de: { "caps.legend": "🎙 Sprache wird untertitelt · ⇄N auf diesem Server in und aus N Sprachen übersetzt" },
  fr: { "caps.legend": "🎙 la parole est sous-titrée · ⇄N traduit depuis et vers N langues sur ce serveur" },
  vi: { "caps.legend": "🎙 giọng nói có phụ đề · ⇄N dịch qua lại với N ngôn ngữ trên máy chủ này" },
  ar: { "caps.legend": "🎙 يُعرض الكلام كترجمة مكتوبة · ⇄N يُترجم من وإلى N لغات على هذا الخادم" },
  pt: { "caps.legend": "🎙 a fala é legendada · ⇄N traduzido de e para N idiomas neste servidor" },
  ru: { "caps.legend": "🎙 речь с субтитрами · ⇄N перевод с N языков и на них на этом сервере" },
  tr: { "caps.legend": "🎙 konuşma altyazılanır · ⇄N bu sunucuda N dilden ve N dile çevrilir" },
});

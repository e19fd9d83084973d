// Entry point: sign-in, then the inbox and conversation views over one socket.
import { CallView } from "./call.js";
import { Connection } from "./connection.js";
import { ConversationView } from "./conversation.js";
import { byId, showMessage } from "./dom.js";
import { clientConfig, devToken } from "./http_api.js";
import { InboxView } from "./inbox.js";
import { fillLanguageSelect } from "./languages.js";
import { Outbox } from "./outbox.js";
import { t } from "./i18n.js";
import { TourView } from "./tour.js";
import {
  clearSession,
  decodeClaims,
  saveLanguage,
  saveToken,
  savedLanguage,
  savedToken,
  takeTokenFromFragment,
  userFromToken,
} from "./session.js";

const NOTICE_KEY = "tradetalk.notice";
const status = byId("status");

function setStatus(text, kind = "") {
  status.textContent = text || "";
  status.className = `status ${kind}`;
  status.hidden = !text;
}

// ----- sign-in -------------------------------------------------------------------------------

async function showSignIn(error = "") {
  byId("app-view").hidden = true;
  byId("me").hidden = true;
  byId("signin-view").hidden = false;
  showMessage(byId("signin-error"), error);
  const config = await clientConfig();
  const devForm = byId("dev-signin");
  const tokenForm = byId("token-signin");
  devForm.hidden = !config.dev;
  tokenForm.hidden = config.dev;
  fillLanguageSelect(byId("signin-lang"), navigator.language?.slice(0, 2) || "en");
  devForm.onsubmit = async (event) => {
    event.preventDefault();
    const submit = byId("signin-submit");
    submit.disabled = true;
    try {
      const { token } = await devToken(
        byId("signin-name").value.trim(),
        byId("signin-role").value,
        byId("signin-lang").value,
      );
      signedIn(token);
    } catch (err) {
      showMessage(byId("signin-error"), err.message);
    } finally {
      submit.disabled = false;
    }
  };
  tokenForm.onsubmit = (event) => {
    event.preventDefault();
    const token = byId("signin-token").value.trim();
    if (userFromToken(token)) signedIn(token);
    else showMessage(byId("signin-error"), "That token is not valid or has expired.");
  };
}

/** A token from a sign-in form: keep it for the tab and start afresh (one app per page load). */
function signedIn(token) {
  saveToken(token);
  location.reload();
}

/** Start with the tab's token, or show the sign-in (with a notice left by the last page). */
function boot() {
  const fromFragment = takeTokenFromFragment();
  if (fromFragment) {
    sessionStorage.removeItem("tradetalk.lang"); // the language belongs to the previous token
    saveToken(fromFragment);
  }
  const token = savedToken();
  const notice = sessionStorage.getItem(NOTICE_KEY) || "";
  sessionStorage.removeItem(NOTICE_KEY);
  const user = token ? userFromToken(token) : null;
  if (user) {
    startApp(token, user);
  } else {
    clearSession();
    const why = !token ? notice : decodeClaims(token) ? "Your sign-in has expired." : "That sign-in link is not valid.";
    showSignIn(why);
  }
}

// A sign-in link opened in this tab while the page is already loaded.
window.addEventListener("hashchange", () => {
  if (location.hash.startsWith("#token=")) location.reload();
});

/** Sign out (or get signed out): forget the tab's session and reload to the sign-in. */
function signOut(notice = "") {
  clearSession();
  if (notice) sessionStorage.setItem(NOTICE_KEY, notice);
  history.replaceState(null, "", location.pathname);
  location.reload();
}

// ----- the signed-in app ---------------------------------------------------------------------

function startApp(token, user) {
  const connection = new Connection(token);
  const app = {
    me: user,
    token,
    lang: savedLanguage() || user.lang,
    connection,
    outbox: new Outbox(`tradetalk.outbox.${user.id}`, connection),
    names: new Map([[user.id, user.name]]),
    online: new Map(),
    openConversation: (id) => {
      location.hash = `#/c/${id}`;
    },
  };
  app.inbox = new InboxView(app);
  app.conversation = new ConversationView(app);
  app.call = new CallView(app);
  app.tour = new TourView(app);
  byId("tours-link").textContent = t("tour.nav");
  window.tradetalk = app; // for debugging and the browser tests

  byId("me").hidden = false;
  byId("app-view").hidden = false;
  byId("me-name").textContent = `${user.name} · ${user.role}`;
  byId("my-id").textContent = user.id;
  const langSelect = byId("lang-select");
  fillLanguageSelect(langSelect, app.lang);
  langSelect.onchange = () => changeLanguage(app, langSelect.value);
  byId("sign-out").onclick = () => {
    connection.close();
    signOut();
  };
  setStatus("Connecting…", "warn");

  connection.addEventListener("connected", async () => {
    setStatus("");
    document.body.classList.remove("offline");
    if (app.lang !== user.lang) {
      await connection.request("user.set_language", { lang: app.lang }).catch(() => {});
    }
    try {
      const ack = await connection.request("inbox.list", {});
      app.inbox.setAll(ack.conversations);
    } catch {
      /* the next reconnect retries */
    }
    if (app.conversation.id) {
      app.conversation.joined = false;
      await app.conversation.join();
    }
    app.outbox.flush();
    app.tour.onConnected();
  });
  connection.addEventListener("disconnected", () => {
    if (connection.everConnected) {
      setStatus("Reconnecting… messages you send are kept and go out when the connection is back.", "warn");
      document.body.classList.add("offline");
    }
    app.conversation.joined = false;
    app.call.onDisconnected();
    app.tour.onDisconnected();
  });
  connection.addEventListener("unauthorized", (event) => {
    connection.close();
    signOut(`Sign-in refused (${event.detail}). Please sign in again.`);
  });
  connection.addEventListener("server", ({ detail: { event, data } }) => {
    if (app.tour.onEvent(event, data)) return;
    if (app.call.onEvent(event, data)) return;
    if (event === "message.new") app.conversation.onMessage(data.message);
    else if (event === "inbox.update") app.inbox.upsert(data.conversation);
    else if (event === "typing") app.conversation.onTyping(data);
    else if (event === "read") app.conversation.onRead(data);
    else if (event === "presence") {
      app.online.set(data.user_id, data.online);
      app.conversation.onPresence();
      app.inbox.render();
    } else if (event === "user.language" && data.user_id === user.id) applyLanguage(app, data.lang);
  });
  app.outbox.addEventListener("sent", ({ detail }) => app.conversation.sent(detail.message));
  app.outbox.addEventListener("failed", ({ detail }) => app.conversation.failed(detail.item, detail.error));

  window.addEventListener("hashchange", () => route(app));
  route(app);
}

function route(app) {
  const match = /^#\/c\/(c_[0-9a-f]{16})$/.exec(location.hash);
  const id = match ? match[1] : null;
  document.body.classList.toggle("in-conversation", Boolean(id));
  document.body.classList.toggle("in-tours", app.tour.route(location.hash));
  app.inbox.setActive(id);
  app.conversation.open(id);
  app.call.conversationChanged();
}

async function changeLanguage(app, lang) {
  try {
    await app.connection.request("user.set_language", { lang });
    applyLanguage(app, lang);
  } catch (err) {
    setStatus(`Could not change the language: ${err.message}`, "error");
    byId("lang-select").value = app.lang;
  }
}

function applyLanguage(app, lang) {
  app.lang = lang;
  saveLanguage(lang);
  byId("lang-select").value = lang;
  app.conversation.rerenderAll();
  app.inbox.render();
  app.tour.languageChanged(lang);
}

// ----- boot ----------------------------------------------------------------------------------

boot();

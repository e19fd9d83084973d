// Entry point: sign-in, then the inbox and conversation views over one socket.
import { CallView } from "./call.js";
import { CallAlert } from "./call_alert.js";
import { Connection } from "./connection.js";
import { ConversationView } from "./conversation.js";
import { bdi, byId, showMessage } from "./dom.js";
import { GlossaryPanel } from "./glossary.js";
import { QuoteDesk } from "./quotes.js";
import { clientConfig, devToken } from "./http_api.js";
import { setUiLanguage, t, translatePage } from "./i18n.js";
import { InboxView } from "./inbox.js";
import { fillLanguageSelect } from "./languages.js";
import { Outbox } from "./outbox.js";
import "./strings/app.js";
import "./strings/inbox.js";
import { TourView } from "./tour.js";
import {
  clearInvite,
  clearSession,
  decodeClaims,
  devIdFor,
  forgetLanguage,
  inviteLink,
  pageLanguage,
  rememberDevId,
  saveLanguage,
  savePageLanguage,
  saveToken,
  savedLanguage,
  savedToken,
  takeInvite,
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
  const langSelect = byId("signin-lang");
  fillLanguageSelect(langSelect, setUiLanguage(pageLanguage() || navigator.language || "en"));
  translatePage();
  // The page speaks the language being chosen, at once (the notice shown too, if it was ours).
  langSelect.onchange = () => {
    savePageLanguage(setUiLanguage(langSelect.value));
    translatePage();
    if (pendingInvite) showMessage(byId("signin-error"), t("signin.invite_pending"));
  };
  const pendingInvite = !error && takeInvite();
  if (pendingInvite) error = t("signin.invite_pending");
  byId("app-view").hidden = true;
  byId("me").hidden = true;
  byId("signin-view").hidden = false;
  showMessage(byId("signin-error"), error);
  const config = await clientConfig();
  const devForm = byId("dev-signin");
  const tokenForm = byId("token-signin");
  devForm.hidden = !config.dev;
  tokenForm.hidden = config.dev;
  devForm.onsubmit = async (event) => {
    event.preventDefault();
    const submit = byId("signin-submit");
    submit.disabled = true;
    try {
      const name = byId("signin-name").value.trim();
      const { token, user } = await devToken(
        name,
        byId("signin-role").value,
        byId("signin-lang").value,
        devIdFor(name),
      );
      rememberDevId(name, user.id);
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
    else showMessage(byId("signin-error"), t("signin.bad_token"));
  };
}

/** A token from a sign-in form: keep it for this browser and start afresh (one app per load). */
function signedIn(token) {
  forgetLanguage(); // the language belongs to the previous token
  saveToken(token);
  location.reload();
}

/** Start with the tab's token, or show the sign-in (with a notice left by the last page). */
function boot() {
  const fromFragment = takeTokenFromFragment();
  if (fromFragment) {
    forgetLanguage(); // the language belongs to the previous token
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
    setUiLanguage(pageLanguage() || navigator.language || "en"); // the notice in the page's language
    const why = !token ? notice : decodeClaims(token) ? t("signin.expired") : t("signin.bad_link");
    showSignIn(why);
  }
}

// A sign-in link opened in this tab while the page is already loaded.
window.addEventListener("hashchange", () => {
  if (location.hash.startsWith("#token=")) location.reload();
  else if (location.hash.startsWith("#invite=") && window.tradetalk) followInvite(window.tradetalk);
});

/** Sign out (or get signed out): forget the tab's session and reload to the sign-in. */
function signOut(notice = "") {
  clearSession();
  if (notice) sessionStorage.setItem(NOTICE_KEY, notice);
  history.replaceState(null, "", location.pathname);
  location.reload();
}

// ----- the signed-in app ---------------------------------------------------------------------

/** What a server event does outside the call and tour views (which take theirs first). */
const SERVER_EVENTS = {
  "message.new": (app, data) => app.conversation.onMessage(data.message),
  "inbox.update": (app, data) => app.inbox.upsert(data.conversation),
  typing: (app, data) => app.conversation.onTyping(data),
  read: (app, data) => app.conversation.onRead(data),
  presence: (app, data) => {
    app.online.set(data.user_id, data.online);
    app.presenceHeard.set(data.user_id, performance.now());
    app.conversation.onPresence();
    app.inbox.render();
  },
  "user.language": (app, data) => {
    if (data.user_id === app.me.id) applyLanguage(app, data.lang);
  },
};

/** Send a server event to the view it belongs to. */
function dispatch(app, event, data) {
  if (app.tour.onEvent(event, data) || app.call.onEvent(event, data)) return;
  SERVER_EVENTS[event]?.(app, data);
}

function startApp(token, user) {
  const connection = new Connection(token);
  const lang = savedLanguage() || user.lang;
  savePageLanguage(setUiLanguage(lang));
  translatePage();
  const app = buildApp(token, user, lang, connection);
  window.tradetalk = app; // for debugging and the browser tests
  showHeader(app, connection);
  setStatus(t("status.connecting"), "warn");
  connection.addEventListener("connected", () => onConnected(app));
  connection.addEventListener("disconnected", () => onDisconnected(app));
  connection.addEventListener("unauthorized", (event) => {
    connection.close();
    signOut(t("signin.refused", { reason: event.detail }));
  });
  connection.addEventListener("server", ({ detail: { event, data } }) => dispatch(app, event, data));
  app.outbox.addEventListener("sent", ({ detail }) => app.conversation.sent(detail.message));
  app.outbox.addEventListener("failed", ({ detail }) => app.conversation.failed(detail.item, detail.error));

  window.addEventListener("hashchange", () => route(app));
  route(app);
}

/** The app's shared state and its views (each view gets the app). */
function buildApp(token, user, lang, connection) {
  const app = {
    me: user,
    token,
    lang,
    connection,
    outbox: new Outbox(`tradetalk.outbox.${user.id}`, connection),
    names: new Map([[user.id, user.name]]),
    people: new Map(), // user id -> {name, role, lang} from the conversations' `people`
    learnPeople: (people) => {
      for (const [id, person] of Object.entries(people || {})) {
        app.people.set(id, person);
        if (person.name) app.names.set(id, person.name);
      }
    },
    updateTitle: () => app.callAlert?.updateTitle(),
    online: new Map(), // user id -> connected, as last heard (absent: unknown)
    presenceHeard: new Map(), // user id -> when the last `presence` event about them came
    openConversation: (id) => {
      location.hash = `#/c/${id}`;
    },
  };
  app.inbox = new InboxView(app);
  app.conversation = new ConversationView(app);
  app.call = new CallView(app);
  app.glossary = new GlossaryPanel(app);
  app.quotes = new QuoteDesk(app);
  app.callAlert = new CallAlert(app);
  app.tour = new TourView(app);
  return app;
}

/** Who is signed in, their language, invite link and sign-out. */
function showHeader(app, connection) {
  const user = app.me;
  byId("me").hidden = false;
  byId("app-view").hidden = false;
  byId("me-name").replaceChildren(bdi(user.name), ` · ${t(`role.${user.role}`)}`);
  byId("my-id").textContent = user.id;
  const langSelect = byId("lang-select");
  fillLanguageSelect(langSelect, app.lang);
  langSelect.onchange = () => changeLanguage(app, langSelect.value);
  byId("copy-invite").onclick = () => copyInvite(user.id);
  byId("sign-out").onclick = () => {
    connection.close();
    signOut();
  };
}

/** The socket is connected (again): the language, the call we were in, the inbox, the open
 * conversation, the outbox, the tours. */
async function onConnected(app) {
  const connection = app.connection;
  setStatus("");
  document.body.classList.remove("offline");
  if (app.lang !== app.me.lang) {
    await connection.request("user.set_language", { lang: app.lang }).catch(() => {});
  }
  app.call.onConnected(); // back in the call we were in when the socket dropped
  try {
    const askedAt = performance.now();
    const ack = await connection.request("inbox.list", {});
    app.inbox.setAll(ack.conversations, askedAt); // with each participant's presence
    app.conversation.onPresence();
    // A call ringing in any conversation rings here too, even after a reload.
    app.call.refreshAllRunning(app.inbox.ids());
  } catch {
    /* the next reconnect retries */
  }
  await followInvite(app);
  if (app.conversation.id) {
    app.conversation.joined = false;
    await app.conversation.join();
  }
  app.outbox.flush();
  app.tour.onConnected();
}

function onDisconnected(app) {
  if (app.connection.everConnected) {
    setStatus(t("status.reconnecting"), "warn");
    document.body.classList.add("offline");
  }
  app.conversation.joined = false;
  // What we knew of who is online is stale from now on: unknown until we are back.
  app.online.clear();
  app.inbox.render();
  app.conversation.onPresence();
  app.call.onDisconnected();
  app.tour.onDisconnected();
}

function route(app) {
  const match = /^#\/c\/(c_[0-9a-f]{16})$/.exec(location.hash);
  const id = match ? match[1] : null;
  document.body.classList.toggle("in-conversation", Boolean(id));
  document.body.classList.toggle("in-tours", app.tour.route(location.hash));
  app.inbox.setActive(id);
  app.conversation.open(id);
  app.call.conversationChanged();
  app.glossary.conversationChanged();
  app.quotes.conversationChanged();
}

/** Show (and try to copy) the link that opens a conversation with me. */
async function copyInvite(userId) {
  const link = inviteLink(userId);
  const note = byId("invite-copied");
  try {
    await navigator.clipboard.writeText(link);
    note.textContent = t("me.invite_copied", { link });
  } catch {
    note.textContent = t("me.invite_shown", { link });
  }
  note.hidden = false;
}

/** Open (or start) the conversation with the owner of an invite link this browser followed. */
async function followInvite(app) {
  const owner = takeInvite();
  if (!owner || !app.connection.connected) return;
  clearInvite();
  if (owner === app.me.id) return;
  const existing = app.inbox.withUser(owner);
  if (existing) {
    app.openConversation(existing.id);
    return;
  }
  try {
    const ack = await app.connection.request("conversation.create", { participants: [owner] });
    app.inbox.upsert({ ...ack.conversation, last_message: null, unread: 0 });
    app.openConversation(ack.conversation.id);
  } catch (err) {
    setStatus(t("status.invite_failed", { error: err.message }), "error");
  }
}

async function changeLanguage(app, lang) {
  try {
    await app.connection.request("user.set_language", { lang });
    applyLanguage(app, lang);
  } catch (err) {
    setStatus(t("status.lang_failed", { error: err.message }), "error");
    byId("lang-select").value = app.lang;
  }
}

function applyLanguage(app, lang) {
  app.lang = lang;
  saveLanguage(lang);
  byId("lang-select").value = lang;
  savePageLanguage(setUiLanguage(lang));
  translatePage();
  if (!app.call.active) app.call.buildView();
  app.call.renderSlot();
  app.conversation.rerenderAll();
  app.conversation.renderHeader();
  app.inbox.render();
  app.tour.languageChanged(lang);
}

// ----- boot ----------------------------------------------------------------------------------

boot();

/*! frontdesk chat widget (the app the loader injects; served under a content-hashed URL).
 *
 * Responsible for: fetching the bot's public widget config, drawing the launcher and the chat
 * panel inside an open Shadow DOM on someone else's page, speaking the /ws/widget protocol
 * (resume by conversation id and seq, streamed replies, agents, read receipts), never losing
 * or repeating a message (outbox in localStorage, dedupe by seq and client_msg_id, reconnect
 * with back-off), the lead form, uploads, sounds, localisation and the window.frontdesk API.
 *
 * Safety rule for every line below: text from the server, the bot's settings, an agent or the
 * visitor only ever reaches the page through textContent / createElement / setAttribute on
 * vetted URLs — never innerHTML. The Markdown subset is parsed into nodes, not HTML.
 *
 * UI strings (override any of them per bot with config.strings, by key; unknown keys are
 * ignored; "{name}", "{n}", "{s}", "{max}" are filled in):
 *   launcher, close, placeholder, input_label, send, attach, messages, connecting,
 *   reconnecting, offline, pending, queued, failed, retry_in, agent_joined, agent_left, ended,
 *   new_conversation, lead_message, name, email, phone, optional, submit, lead_thanks,
 *   err_required, err_email, err_phone, away, away_known, seen, too_big, bad_type, upload_failed,
 *   uploading, typing, unread, file
 *
 * localStorage "frontdesk:<bot_id>": {conversation_id, last_seq, open, outbox, read_seq,
 * agent, lead, contact} — last_seq is the highest seq this browser has received, read_seq the
 * highest the visitor has had on screen (the unread badge counts bot/agent messages above it).
 */
(() => {
  "use strict";
  var W = window, D = document;
  var stub = W.frontdesk;
  var boot = stub && stub.boot;
  if (!boot || stub.app) return;

  var BASE = boot.base, BOT = boot.bot, KEY = "frontdesk:" + BOT;
  var SVG = "http://www.w3.org/2000/svg";

  var STRINGS = {
    en: {
      launcher: "Chat with us", close: "Close chat", placeholder: "Write a message…", input_label: "Message",
      send: "Send", attach: "Attach a file", messages: "Messages", connecting: "Connecting…",
      reconnecting: "Reconnecting…", offline: "You're offline — messages will be sent when you're back",
      pending: "Sending…", queued: "Will be sent when the connection is back", failed: "Not delivered",
      retry_in: "Too many messages at once — retrying in {s} s", agent_joined: "{name} joined the chat",
      agent_left: "{name} left the chat", ended: "This conversation has ended",
      new_conversation: "Start a new conversation", lead_message: "Before we start, how can we reach you?",
      name: "Name", email: "Email", phone: "Phone", optional: "optional", submit: "Send",
      lead_thanks: "Thanks! We'll be in touch.", err_required: "Please fill in this field",
      err_email: "Please enter a valid email address", err_phone: "Please enter a valid phone number",
      away: "Our team is away right now — leave your email and we'll reply by email.",
      away_known: "Our team is away right now — we'll reply to you by email.", seen: "Seen",
      too_big: "{name} is too large (max {max})", bad_type: "{name} can't be sent: this file type isn't accepted",
      upload_failed: "The upload failed — please try again", uploading: "Uploading {name}…",
      typing: "{name} is typing…", unread: "{n} unread", file: "File"
    },
    es: {
      launcher: "Chatea con nosotros", close: "Cerrar chat", placeholder: "Escribe un mensaje…", input_label: "Mensaje",
      send: "Enviar", attach: "Adjuntar un archivo", messages: "Mensajes", connecting: "Conectando…",
      reconnecting: "Reconectando…", offline: "Sin conexión: los mensajes se enviarán cuando vuelvas",
      pending: "Enviando…", queued: "Se enviará cuando vuelva la conexión", failed: "No entregado",
      retry_in: "Demasiados mensajes seguidos: reintentando en {s} s", agent_joined: "{name} se ha unido al chat",
      agent_left: "{name} ha salido del chat", ended: "Esta conversación ha terminado",
      new_conversation: "Iniciar una nueva conversación", lead_message: "Antes de empezar, ¿cómo podemos contactarte?",
      name: "Nombre", email: "Correo electrónico", phone: "Teléfono", optional: "opcional", submit: "Enviar",
      lead_thanks: "¡Gracias! Nos pondremos en contacto.", err_required: "Este campo es obligatorio",
      err_email: "Introduce un correo electrónico válido", err_phone: "Introduce un número de teléfono válido",
      away: "Nuestro equipo no está disponible ahora: déjanos tu correo y te responderemos por correo electrónico.",
      away_known: "Nuestro equipo no está disponible ahora: te responderemos por correo electrónico.", seen: "Visto",
      too_big: "{name} es demasiado grande (máx. {max})", bad_type: "No se puede enviar {name}: tipo de archivo no admitido",
      upload_failed: "No se pudo subir el archivo; inténtalo de nuevo", uploading: "Subiendo {name}…",
      typing: "{name} está escribiendo…", unread: "{n} sin leer", file: "Archivo"
    },
    fr: {
      launcher: "Discutez avec nous", close: "Fermer le chat", placeholder: "Écrivez un message…", input_label: "Message",
      send: "Envoyer", attach: "Joindre un fichier", messages: "Messages", connecting: "Connexion…",
      reconnecting: "Reconnexion…", offline: "Hors ligne — vos messages partiront dès le retour de la connexion",
      pending: "Envoi…", queued: "Sera envoyé au retour de la connexion", failed: "Non distribué",
      retry_in: "Trop de messages d'un coup — nouvel essai dans {s} s", agent_joined: "{name} a rejoint la conversation",
      agent_left: "{name} a quitté la conversation", ended: "Cette conversation est terminée",
      new_conversation: "Démarrer une nouvelle conversation", lead_message: "Avant de commencer, comment pouvons-nous vous joindre ?",
      name: "Nom", email: "E-mail", phone: "Téléphone", optional: "facultatif", submit: "Envoyer",
      lead_thanks: "Merci ! Nous vous recontacterons.", err_required: "Ce champ est obligatoire",
      err_email: "Saisissez une adresse e-mail valide", err_phone: "Saisissez un numéro de téléphone valide",
      away: "Notre équipe est absente pour le moment — laissez votre e-mail et nous vous répondrons par e-mail.",
      away_known: "Notre équipe est absente pour le moment — nous vous répondrons par e-mail.", seen: "Vu",
      too_big: "{name} est trop volumineux (max. {max})", bad_type: "Impossible d'envoyer {name} : ce type de fichier n'est pas accepté",
      upload_failed: "L'envoi du fichier a échoué — veuillez réessayer", uploading: "Envoi de {name}…",
      typing: "{name} écrit…", unread: "{n} non lus", file: "Fichier"
    },
    de: {
      launcher: "Chatten Sie mit uns", close: "Chat schließen", placeholder: "Nachricht schreiben…", input_label: "Nachricht",
      send: "Senden", attach: "Datei anhängen", messages: "Nachrichten", connecting: "Verbinden…",
      reconnecting: "Verbindung wird wiederhergestellt…", offline: "Offline – Nachrichten werden gesendet, sobald Sie wieder online sind",
      pending: "Wird gesendet…", queued: "Wird gesendet, sobald die Verbindung wieder steht", failed: "Nicht zugestellt",
      retry_in: "Zu viele Nachrichten auf einmal – neuer Versuch in {s} s", agent_joined: "{name} ist dem Chat beigetreten",
      agent_left: "{name} hat den Chat verlassen", ended: "Dieses Gespräch wurde beendet",
      new_conversation: "Neues Gespräch beginnen", lead_message: "Bevor wir beginnen: Wie können wir Sie erreichen?",
      name: "Name", email: "E-Mail", phone: "Telefon", optional: "optional", submit: "Senden",
      lead_thanks: "Danke! Wir melden uns bei Ihnen.", err_required: "Bitte füllen Sie dieses Feld aus",
      err_email: "Bitte geben Sie eine gültige E-Mail-Adresse ein", err_phone: "Bitte geben Sie eine gültige Telefonnummer ein",
      away: "Unser Team ist gerade nicht erreichbar – hinterlassen Sie Ihre E-Mail-Adresse, wir antworten per E-Mail.",
      away_known: "Unser Team ist gerade nicht erreichbar – wir antworten Ihnen per E-Mail.", seen: "Gesehen",
      too_big: "{name} ist zu groß (max. {max})", bad_type: "{name} kann nicht gesendet werden: Dieser Dateityp wird nicht akzeptiert",
      upload_failed: "Hochladen fehlgeschlagen – bitte erneut versuchen", uploading: "{name} wird hochgeladen…",
      typing: "{name} schreibt…", unread: "{n} ungelesen", file: "Datei"
    },
    pt: {
      launcher: "Fale conosco", close: "Fechar chat", placeholder: "Escreva uma mensagem…", input_label: "Mensagem",
      send: "Enviar", attach: "Anexar um arquivo", messages: "Mensagens", connecting: "Conectando…",
      reconnecting: "Reconectando…", offline: "Sem conexão — as mensagens serão enviadas quando você voltar",
      pending: "Enviando…", queued: "Será enviada quando a conexão voltar", failed: "Não entregue",
      retry_in: "Muitas mensagens de uma vez — nova tentativa em {s} s", agent_joined: "{name} entrou no chat",
      agent_left: "{name} saiu do chat", ended: "Esta conversa foi encerrada",
      new_conversation: "Iniciar uma nova conversa", lead_message: "Antes de começar, como podemos falar com você?",
      name: "Nome", email: "E-mail", phone: "Telefone", optional: "opcional", submit: "Enviar",
      lead_thanks: "Obrigado! Entraremos em contato.", err_required: "Preencha este campo",
      err_email: "Informe um e-mail válido", err_phone: "Informe um número de telefone válido",
      away: "Nossa equipe não está disponível agora — deixe seu e-mail e responderemos por e-mail.",
      away_known: "Nossa equipe não está disponível agora — responderemos por e-mail.", seen: "Visto",
      too_big: "{name} é grande demais (máx. {max})", bad_type: "Não é possível enviar {name}: tipo de arquivo não aceito",
      upload_failed: "Falha no envio do arquivo — tente novamente", uploading: "Enviando {name}…",
      typing: "{name} está digitando…", unread: "{n} não lidas", file: "Arquivo"
    }
  };

  // Hand-drawn 24×24 stroke icons; several subpaths are separated by "|".
  var ICONS = {
    chat: "M20 11.5a8 8 0 0 1-11.7 7.1L4 20l1.3-4A8 8 0 1 1 20 11.5z|M8.5 11.5h.01|M12 11.5h.01|M15.5 11.5h.01",
    help: "M12 3a9 9 0 1 0 0 18a9 9 0 1 0 0-18z|M9.6 9.2a2.5 2.5 0 1 1 3.4 2.3c-.6.3-1 .8-1 1.5v.5|M12 16.8h.01",
    calendar: "M5.5 5h13A1.5 1.5 0 0 1 20 6.5v12a1.5 1.5 0 0 1-1.5 1.5h-13A1.5 1.5 0 0 1 4 18.5v-12A1.5 1.5 0 0 1 5.5 5z|M4 10h16|M8.5 3v4|M15.5 3v4",
    tooth: "M8 3.5C5.3 3.5 4 5.6 4 8c0 2.6 1.3 4 1.8 6.4.5 2.6.9 6.1 2.5 6.1 1.8 0 1.6-4.6 3.7-4.6s1.9 4.6 3.7 4.6c1.6 0 2-3.5 2.5-6.1.5-2.4 1.8-3.8 1.8-6.4 0-2.4-1.3-4.5-4-4.5-1.8 0-2.7 1-4 1s-2.2-1-4-1z",
    close: "M6.5 6.5l11 11|M17.5 6.5l-11 11",
    down: "M6 9.5l6 6 6-6",
    send: "M12 19V5.5|M6 11.5l6-6 6 6",
    attach: "M20 11.3l-7.9 7.9a4.9 4.9 0 0 1-6.9-6.9l8.3-8.3a3.2 3.2 0 0 1 4.6 4.6l-8.3 8.3a1.6 1.6 0 0 1-2.3-2.3l7.6-7.6",
    file: "M13.5 3H7a2 2 0 0 0-2 2v14a2 2 0 0 0 2 2h10a2 2 0 0 0 2-2V8.5z|M13.5 3v5.5H19",
    clock: "M12 3a9 9 0 1 0 0 18a9 9 0 1 0 0-18z|M12 7.5V12l3 2"
  };

  // ---------------------------------------------------------------- small helpers
  function h(tag, cls, text) {
    var e = D.createElement(tag);
    if (cls) e.className = cls;
    if (text != null) e.textContent = text;
    return e;
  }
  function attrs(e, a) { for (var k in a) e.setAttribute(k, a[k]); return e; }
  function icon(name) {
    var s = D.createElementNS(SVG, "svg");
    attrs(s, { viewBox: "0 0 24 24", "aria-hidden": "true", focusable: "false", "class": "fd-icon" });
    ICONS[name].split("|").forEach((d) => {
      var p = D.createElementNS(SVG, "path");
      p.setAttribute("d", d);
      s.appendChild(p);
    });
    return s;
  }
  function fmt(s, v) { return String(s).replace(/\{(\w+)\}/g, (m, k) => { return v && k in v ? v[k] : m; }); }
  function warn(msg) { if (W.console) console.warn("frontdesk: " + msg); }
  function str(v) { return typeof v === "string" ? v : ""; }
  function uuid() {
    var c = W.crypto;
    // randomUUID exists only in secure contexts; plain-http clinic sites are common.
    if (c && c.randomUUID) return c.randomUUID();
    var b = new Uint8Array(16);
    if (c && c.getRandomValues) c.getRandomValues(b);
    else for (var i = 0; i < 16; i++) b[i] = Math.random() * 256 | 0;
    b[6] = b[6] & 15 | 64; b[8] = b[8] & 63 | 128;
    var x = Array.prototype.map.call(b, (n) => { return (n + 256).toString(16).slice(1); }).join("");
    return x.slice(0, 8) + "-" + x.slice(8, 12) + "-" + x.slice(12, 16) + "-" + x.slice(16, 20) + "-" + x.slice(20);
  }
  function size(n) {
    if (!(n >= 0)) return "";
    if (n < 1024) return n + " B";
    if (n < 1048576) return Math.round(n / 1024) + " KB";
    return (n / 1048576).toFixed(n < 10485760 ? 1 : 0) + " MB";
  }

  // localStorage may be missing or throw (sandboxed iframes, Safari private mode, a full quota
  // shared with the host site): fall back to memory so the chat still works for this page.
  var memory = {};
  function load() {
    try { return JSON.parse(W.localStorage.getItem(KEY)) || {}; } catch (e) { return JSON.parse(JSON.stringify(memory)); }
  }
  function update(fn) {
    // Read-modify-write each time: another tab of the same visitor writes the same key.
    var s = load();
    fn(s);
    memory = s;
    try { W.localStorage.setItem(KEY, JSON.stringify(s)); } catch (e) { /* memory only */ }
    return s;
  }

  // ---------------------------------------------------------------- colours
  function rgb(c) {
    var m = /^#?([0-9a-f]{3}|[0-9a-f]{6})$/i.exec(str(c).trim());
    if (!m) return null;
    var x = m[1].length === 3 ? m[1].replace(/./g, "$&$&") : m[1];
    return [0, 2, 4].map((i) => { return parseInt(x.substr(i, 2), 16); });
  }
  function lum(c) {
    var l = c.map((v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4); });
    return 0.2126 * l[0] + 0.7152 * l[1] + 0.0722 * l[2];
  }
  function contrast(a, b) {
    var x = lum(a), y = lum(b);
    return (Math.max(x, y) + 0.05) / (Math.min(x, y) + 0.05);
  }
  function hex(c) { return "#" + c.map((v) => { return (Math.round(v) + 256).toString(16).slice(1); }).join(""); }
  function theme(color) {
    var p = rgb(color) || rgb("#0F766E");
    var white = [255, 255, 255], ink = [17, 24, 39], black = [0, 0, 0];
    // Text on the primary colour: white when it reads at AA, else near-black, else whichever
    // of white and black reads better (mid-greys need pure black to reach 4.5:1).
    var on = contrast(white, p) >= 4.5 ? white : contrast(ink, p) >= 4.5 ? ink
      : contrast(white, p) > contrast(black, p) ? white : black;
    // The accent draws text and rings on white: darken a light brand colour until it reads.
    var a = p.slice();
    for (var i = 0; i < 20 && contrast(a, white) < 4.5; i++) a = a.map((v) => { return v * 0.88; });
    return { primary: hex(p), on: hex(on), accent: hex(a), ring: "rgba(" + a.map(Math.round).join(",") + ",.28)" };
  }

  // ---------------------------------------------------------------- safe Markdown subset
  function safeHref(url) {
    var u;
    try { u = new URL(url); } catch (e) { return null; }
    return /^(https?|mailto|tel):$/.test(u.protocol) ? u.href : null;
  }
  function link(href, label) {
    var a = h("a", null, label);
    a.href = href;
    a.target = "_blank";
    a.rel = "noopener noreferrer";
    return a;
  }
  function inline(parent, text) {
    var re = /\*\*(?=\S)([\s\S]*?\S)\*\*|\[([^\]\n]+)\]\(([^()\s]+)\)|\b((?:https?:\/\/|mailto:|tel:)[^\s<>"]+)|([\w.+-]+@[a-z0-9-]+(?:\.[a-z0-9-]+)*\.[a-z]{2,})/gi;
    var last = 0, m;
    while ((m = re.exec(text))) {
      if (m.index > last) parent.appendChild(D.createTextNode(text.slice(last, m.index)));
      var whole = m[0], tail = "";
      if (m[1] != null) {
        var b = h("strong");
        inline(b, m[1]);
        parent.appendChild(b);
      } else if (m[2] != null) {
        var href = safeHref(m[3]);
        parent.appendChild(href ? link(href, m[2]) : D.createTextNode(whole));
      } else if (m[4] != null) {
        // Sentence punctuation after a bare URL is not part of it (nor an unmatched ")").
        var url = m[4].replace(/[.,;:!?'"\]]+$/, "");
        while (/\)$/.test(url) && url.split("(").length < url.split(")").length) url = url.slice(0, -1);
        tail = m[4].slice(url.length);
        var safe = safeHref(url);
        parent.appendChild(safe ? link(safe, url) : D.createTextNode(url));
      } else {
        parent.appendChild(link("mailto:" + m[5], m[5]));
      }
      if (tail) parent.appendChild(D.createTextNode(tail));
      last = re.lastIndex;
    }
    if (last < text.length) parent.appendChild(D.createTextNode(text.slice(last)));
  }
  function markdown(target, src) {
    target.textContent = "";
    var para = null, list = null, kind = "";
    String(src).replace(/\r\n?/g, "\n").split("\n").forEach((line) => {
      var m = /^\s*([-*•]|\d{1,3}[.)])\s+(.*)$/.exec(line);
      if (m) {
        var type = /\d/.test(m[1]) ? "ol" : "ul";
        if (!list || kind !== type) {
          list = target.appendChild(h(type));
          kind = type;
          if (type === "ol" && parseInt(m[1], 10) > 1) list.start = parseInt(m[1], 10);
        }
        inline(list.appendChild(h("li")), m[2]);
        para = null;
        return;
      }
      list = null;
      if (!line.trim()) { para = null; return; }
      if (para) para.appendChild(h("br"));
      else para = target.appendChild(h("p"));
      inline(para, line);
    });
  }

  // ---------------------------------------------------------------- state
  var cfg, S, lang;
  var host, root, panel, launcher, badge, log, body, conn, typingEl, choices, away, leadBox, notice,
    composer, input, sendBtn, attachBtn, fileInput, titleEl, subtitleEl, agentEl, avatarEl, endedBox;
  var ws = null, joined = false, attempt = 0, retryTimer = 0, nextDelay = -1, pingTimer = 0, lastHeard = 0;
  var connWanted = false, connTimer = 0, stopped = false;
  var convId = null, maxSeq = 0, bootSeq = 0, readSeq = 0, readSent = 0, agentRead = 0;
  var seen = {}, pendingEls = {}, streams = {}, repliedTo = {};
  var ghost = null, isOpen = false, unread = 0, agent = null, isEnded = false;
  var unsent = "", controls = [], identity = null, leadMode = null, leadSending = false, awayShown = false;
  var typingTimer = 0, myTyping = false, myTypingAt = 0, myTypingTimer = 0, noticeTimer = 0;
  var joinWaiters = [], handlers = { message: [], open: [], close: [], ready: [] }, uiReady = false;
  var queue = stub.q || [];

  // ---------------------------------------------------------------- the public API
  function api() {
    if (!uiReady) { queue.push(arguments); return; }
    var a = arguments, cmd = a[0];
    try {
      if (cmd === "open") setOpen(true, true);
      else if (cmd === "close") setOpen(false, false);
      else if (cmd === "toggle") setOpen(!isOpen, true);
      else if (cmd === "identify") identify(a[1]);
      else if (cmd === "send") { if (typeof a[1] === "string") send(a[1]); }
      else if (cmd === "configure") configure(a[1]);
      else if (cmd === "on") {
        if (handlers[a[1]] && typeof a[2] === "function") {
          handlers[a[1]].push(a[2]);
          // "ready" has usually happened by the time a late subscriber asks.
          if (a[1] === "ready") a[2]({ bot_id: BOT, conversation_id: convId });
        }
      } else warn("unknown command " + JSON.stringify(cmd));
    } catch (e) { warn(e && e.message); }
  }
  api.boot = boot;
  api.q = queue;
  api.app = true;
  W.frontdesk = api;
  function emit(name, payload) {
    handlers[name].forEach((fn) => {
      try { fn(payload); } catch (e) { if (W.console) console.error(e); }
    });
  }

  // ---------------------------------------------------------------- boot
  function start() {
    var tries = 0;
    listenForPreview();
    (function get() {
      fetch(BASE + "/widget/config/" + encodeURIComponent(BOT), { credentials: "omit" }).then((r) => {
        return r.json().catch(() => { return {}; }).then((j) => {
          if (r.ok) return build(j);
          // 403/404 are the site's misconfiguration; say so once and stay out of the way.
          if (r.status === 403 || r.status === 404) return warn(j.error || "bot " + BOT + " is not available (" + r.status + ")");
          throw new Error(r.status);
        });
      }).catch(() => {
        setTimeout(get, Math.min(60000, 1000 * Math.pow(2, tries++)));
      });
    })();
  }

  function pickLang() {
    var ok = (l) => { l = str(l).toLowerCase().split(/[-_]/)[0]; return STRINGS[l] ? l : null; };
    var nav = (navigator.languages && navigator.languages[0]) || navigator.language;
    return ok(boot.lang) || (cfg.language !== "auto" && ok(cfg.language)) || ok(nav) || "en";
  }

  function build(config) {
    cfg = config || {};
    lang = pickLang();
    S = Object.assign({}, STRINGS.en, STRINGS[lang]);
    var over = cfg.strings || {};
    Object.keys(over).forEach((k) => { if (k in S && typeof over[k] === "string" && over[k]) S[k] = over[k]; });

    host = h("div");
    host.id = "frontdesk-widget";
    // Out of the page's flow, above its content; inline !important beats the page's own rules
    // (a site's `div { border: … }` would otherwise draw on the host).
    [["all", "initial"], ["position", "fixed"], ["top", "0"], ["left", "0"], ["width", "0"], ["height", "0"], ["z-index", "2147483000"],
      ["display", "block"], ["visibility", "hidden"]].forEach((p) => { host.style.setProperty(p[0], p[1], "important"); });
    var t = theme(cfg.primary_color);
    host.style.setProperty("--fd-primary", t.primary);
    host.style.setProperty("--fd-on-primary", t.on);
    host.style.setProperty("--fd-accent", t.accent);
    host.style.setProperty("--fd-ring", t.ring);
    var shadow = host.attachShadow({ mode: "open" });
    var css = h("link");
    css.rel = "stylesheet";
    css.href = boot.css;
    if (boot.nonce) css.nonce = boot.nonce;
    // Shown only once styled: an unstyled flash of the panel on a clinic's homepage looks broken.
    css.onload = () => { host.style.removeProperty("visibility"); };
    css.onerror = () => { warn("could not load the widget's stylesheet " + boot.css); };
    shadow.appendChild(css);
    root = shadow.appendChild(h("div", "fd-root"));
    if ((boot.position || cfg.position) === "bottom-left") root.classList.add("fd-left");
    root.lang = lang;

    buildPanel();
    buildLauncher();
    (D.body || D.documentElement).appendChild(host);

    var st = load();
    convId = st.conversation_id || null;
    bootSeq = st.last_seq || 0;
    readSeq = st.read_seq || 0;
    if (st.agent && st.agent.name && convId) setAgent(st.agent, true);
    if (!convId) showWelcome();
    (st.outbox || []).forEach(pendingBubble);
    if (convId || (st.outbox || []).length) connect();
    refresh();

    W.addEventListener("storage", onStorage);
    W.addEventListener("online", wake);
    W.addEventListener("offline", connBanner);
    D.addEventListener("visibilitychange", () => {
      if (!D.hidden) { wake(); markRead(); }
    });

    var open = st.open;
    if (open === undefined) open = boot.open === "true" || boot.open === "";
    uiReady = true;
    if (open) setOpen(true, false);
    emit("ready", { bot_id: BOT, conversation_id: convId });
    queue.splice(0).forEach((args) => { api.apply(null, args); });
  }

  function iconButton(cls, name, label, type) {
    var b = h("button", cls);
    b.type = type || "button";
    b.setAttribute("aria-label", label);
    b.title = label;
    b.appendChild(icon(name));
    return b;
  }

  function buildPanel() {
    panel = root.appendChild(h("div", "fd-panel"));
    attrs(panel, { role: "dialog", "aria-label": str(cfg.title) || S.launcher, tabindex: "-1" });
    panel.hidden = true;
    panel.addEventListener("keydown", (e) => {
      if (e.key === "Escape") { e.preventDefault(); setOpen(false, true); }
    });

    var head = panel.appendChild(h("div", "fd-header"));
    avatarEl = head.appendChild(h("div", "fd-avatar"));
    avatar(null);
    var heading = head.appendChild(h("div", "fd-heading"));
    titleEl = heading.appendChild(h("div", "fd-title", str(cfg.title) || S.launcher));
    subtitleEl = heading.appendChild(h("div", "fd-subtitle", str(cfg.subtitle)));
    subtitleEl.hidden = !cfg.subtitle;
    agentEl = heading.appendChild(h("div", "fd-agent"));
    agentEl.hidden = true;
    var close = head.appendChild(iconButton("fd-close", "close", S.close));
    close.addEventListener("click", () => { setOpen(false, true); });

    conn = panel.appendChild(h("div", "fd-conn"));
    attrs(conn, { role: "status" });
    conn.hidden = true;

    body = panel.appendChild(h("div", "fd-body"));
    if (str(cfg.business_hours_message)) {
      var hours = body.appendChild(h("div", "fd-hours"));
      hours.appendChild(icon("clock"));
      hours.appendChild(h("span", null, cfg.business_hours_message));
    }
    log = body.appendChild(h("div", "fd-messages"));
    attrs(log, { role: "log", "aria-live": "polite", "aria-label": S.messages });
    typingEl = body.appendChild(h("div", "fd-typing"));
    typingEl.hidden = true;
    var dots = typingEl.appendChild(h("div", "fd-dots"));
    dots.appendChild(h("span"));
    dots.appendChild(h("span"));
    dots.appendChild(h("span"));
    typingEl.appendChild(h("span", "fd-typing-label"));
    choices = body.appendChild(h("div", "fd-choices"));
    choices.hidden = true;
    away = body.appendChild(h("div", "fd-away", S.away));
    attrs(away, { role: "status" });
    away.hidden = true;
    leadBox = body.appendChild(h("div", "fd-lead"));
    leadBox.hidden = true;

    var foot = panel.appendChild(h("div", "fd-footer"));
    notice = foot.appendChild(h("div", "fd-notice"));
    attrs(notice, { role: "alert" });
    notice.hidden = true;
    endedBox = foot.appendChild(h("div", "fd-ended"));
    endedBox.hidden = true;
    var restart = endedBox.appendChild(h("button", "fd-restart", S.new_conversation));
    restart.type = "button";
    restart.addEventListener("click", newConversation);

    composer = foot.appendChild(h("form", "fd-composer"));
    composer.noValidate = true;
    var up = cfg.uploads || {};
    fileInput = composer.appendChild(h("input", "fd-file"));
    fileInput.type = "file";
    fileInput.hidden = true;
    fileInput.tabIndex = -1;
    fileInput.setAttribute("aria-hidden", "true");
    if (Array.isArray(up.types) && up.types.length) fileInput.accept = up.types.join(",");
    fileInput.addEventListener("change", () => {
      var f = fileInput.files && fileInput.files[0];
      fileInput.value = "";
      if (f) upload(f);
    });
    input = composer.appendChild(h("textarea", "fd-input"));
    attrs(input, { rows: "1", "aria-label": S.input_label, placeholder: S.placeholder, dir: "auto", enterkeyhint: "send" });
    if (cfg.max_message_chars > 0) input.maxLength = cfg.max_message_chars;
    attachBtn = composer.appendChild(iconButton("fd-attach", "attach", S.attach));
    attachBtn.hidden = !up.enabled;
    attachBtn.addEventListener("click", () => { fileInput.click(); });
    sendBtn = composer.appendChild(iconButton("fd-send", "send", S.send, "submit"));
    sendBtn.disabled = true;

    input.addEventListener("keydown", (e) => {
      if (e.key === "Enter" && !e.shiftKey && !e.isComposing && e.keyCode !== 229) {
        e.preventDefault();
        submitComposer();
      }
    });
    input.addEventListener("input", () => {
      grow();
      sendBtn.disabled = !input.value.trim();
      typing(!!input.value.trim());
    });
    composer.addEventListener("submit", (e) => { e.preventDefault(); submitComposer(); });
  }

  function buildLauncher() {
    var l = cfg.launcher || {};
    launcher = root.appendChild(h("button", "fd-launcher"));
    launcher.type = "button";
    var ic = launcher.appendChild(h("span", "fd-launcher-icon"));
    ic.appendChild(icon(ICONS[l.icon] && /^(chat|help|calendar|tooth)$/.test(l.icon) ? l.icon : "chat"));
    ic.appendChild(icon("down")).classList.add("fd-when-open");
    if (str(l.text)) {
      launcher.appendChild(h("span", "fd-launcher-text", l.text));
      launcher.classList.add("fd-has-text");
    }
    badge = launcher.appendChild(h("span", "fd-badge"));
    badge.hidden = true;
    attrs(launcher, { "aria-expanded": "false", "aria-label": str(l.text) || S.launcher });
    launcher.addEventListener("click", () => { setOpen(!isOpen, true); });
  }

  function avatar(name) {
    avatarEl.textContent = "";
    var url = !name && mediaUrl(cfg.avatar_url);
    if (url) {
      var img = avatarEl.appendChild(h("img"));
      img.src = url;
      img.alt = "";
    } else {
      avatarEl.textContent = (name || str(cfg.title) || "?").trim().charAt(0).toUpperCase();
    }
    if (cfg.agents_online && !name) avatarEl.appendChild(h("span", "fd-online"));
  }

  // ---------------------------------------------------------------- open / close
  function setOpen(v, focus) {
    v = !!v;
    if (v === isOpen) return;
    isOpen = v;
    panel.hidden = !v;
    root.classList.toggle("fd-open", v);
    launcher.setAttribute("aria-expanded", String(v));
    launcher.setAttribute("aria-label", v ? S.close : str((cfg.launcher || {}).text) || S.launcher);
    update((s) => { s.open = v; });
    if (v) {
      markRead();
      scrollDown(true);
      if (focus) {
        // A phone's keyboard would cover the conversation the visitor came to read.
        var touch = W.matchMedia && W.matchMedia("(pointer: coarse)").matches;
        var first = leadMode === "before" && leadBox.querySelector("input");
        (touch ? panel : first || (composer.hidden ? panel : input)).focus({ preventScroll: true });
      }
      emit("open", {});
    } else {
      if (focus) launcher.focus();
      emit("close", {});
    }
  }

  function markRead() {
    if (!isOpen || D.hidden) return;
    if (maxSeq > readSeq) {
      readSeq = maxSeq;
      update((s) => { s.read_seq = Math.max(s.read_seq || 0, readSeq); });
    }
    unread = 0;
    setBadge();
    if (joined && maxSeq > readSent) {
      readSent = maxSeq;
      frame({ type: "read", seq: maxSeq });
    }
  }

  // Unread = bot/agent messages above the highest seq the visitor has had on screen in any tab.
  function recount() {
    readSeq = Math.max(readSeq, load().read_seq || 0);
    unread = 0;
    if (!isOpen) {
      log.querySelectorAll(".fd-msg[data-seq]").forEach((e) => {
        if (+e.getAttribute("data-seq") > readSeq && /^(bot|agent)$/.test(e.getAttribute("data-sender"))) unread++;
      });
    }
    setBadge();
  }

  function setBadge() {
    badge.hidden = !unread;
    badge.textContent = unread > 9 ? "9+" : String(unread);
    var label = str((cfg.launcher || {}).text) || S.launcher;
    launcher.setAttribute("aria-label", isOpen ? S.close : unread ? label + " (" + fmt(S.unread, { n: unread }) + ")" : label);
  }

  // ---------------------------------------------------------------- the socket
  function wsUrl() { return BASE.replace(/^http/, "ws") + "/ws/widget"; }

  function frame(f) {
    if (ws && ws.readyState === 1) { ws.send(JSON.stringify(f)); return true; }
    return false;
  }

  function connect() {
    connWanted = true;
    if (ws || stopped || isEnded) return;
    clearTimeout(retryTimer);
    retryTimer = 0;
    var sock;
    try { sock = new WebSocket(wsUrl()); } catch (e) { return schedule(); }
    ws = sock;
    connBanner();
    sock.onopen = () => {
      if (sock !== ws) return;
      lastHeard = Date.now();
      var hello = { type: "hello", bot_id: BOT };
      if (convId) { hello.conversation_id = convId; hello.last_seq = maxSeq; }
      frame(hello);
    };
    sock.onmessage = (e) => {
      if (sock !== ws) return;
      lastHeard = Date.now();
      var f;
      try { f = JSON.parse(e.data); } catch (err) { return; }
      if (f && typeof f.type === "string") handle(f);
    };
    sock.onclose = (e) => {
      if (sock !== ws) return;
      lost();
      if (e.code === 1012) { attempt = 0; nextDelay = 0; } // the server restarts: come back at once
      schedule();
    };
  }

  function lost() {
    ws = null;
    joined = false;
    clearInterval(pingTimer);
    showTyping(null);
    connBanner();
  }

  function drop() {
    var s = ws;
    if (!s) return;
    lost();
    try { s.close(); } catch (e) { /* already closing */ }
  }

  function schedule() {
    if (stopped || isEnded || !connWanted) return;
    clearTimeout(retryTimer);
    // Full jitter: a restarted server is not met by every widget in the same instant.
    var delay = nextDelay >= 0 ? nextDelay : Math.random() * Math.min(30000, 500 * Math.pow(2, attempt));
    nextDelay = -1;
    attempt++;
    retryTimer = setTimeout(connect, delay);
    connBanner();
  }

  function wake() {
    if (!connWanted || stopped || isEnded) return connBanner();
    if (!ws) { attempt = 0; connect(); }
    else if (joined && Date.now() - lastHeard > 30000) frame({ type: "ping" });
  }

  function connBanner() {
    if (!conn) return;
    clearTimeout(connTimer);
    if (joined || !connWanted || isEnded || stopped) { conn.hidden = true; return; }
    var offline = navigator.onLine === false;
    // A quick reconnect should not flash a banner.
    connTimer = setTimeout(() => {
      conn.textContent = offline ? S.offline : maxSeq || attempt ? S.reconnecting : S.connecting;
      conn.classList.toggle("fd-offline", offline);
      conn.hidden = joined;
      markQueued();
    }, offline ? 0 : 1200);
  }

  function handle(f) {
    switch (f.type) {
      case "ready": return onReady(f);
      case "ack": return onStored(f.message, f.client_msg_id, f.duplicate);
      case "message": return onStored(f.message);
      case "done": return onStored(f.message);
      case "delta": return onDelta(f);
      case "typing":
        if (f.sender === "visitor") return;
        return showTyping(f.on ? (f.sender === "bot" ? "bot" : "agent") : null);
      case "read":
        if (f.reader === "agent" && f.seq > agentRead) { agentRead = f.seq; updateSeen(); }
        return;
      case "agent_joined": return onAgentJoined(f.agent);
      case "agent_left": return onAgentLeft(f.agent);
      case "closed": return endConversation();
      case "contact_saved": return onContactSaved(f.contact);
      case "error": return onError(f);
    }
  }

  function onReady(f) {
    var fresh = !convId;
    joined = true;
    attempt = 0;
    convId = f.conversation_id;
    update((s) => {
      if (s.conversation_id !== convId) { s.conversation_id = convId; s.last_seq = 0; s.read_seq = 0; }
    });
    connBanner();
    clearInterval(pingTimer);
    pingTimer = setInterval(() => {
      // A half-open TCP connection never fires onclose: our pings get pongs, or we start over.
      if (Date.now() - lastHeard > 60000) { drop(); attempt = 0; schedule(); }
      else frame({ type: "ping" });
    }, 25000);
    // The server may say who holds the conversation; older servers do not.
    if (f.status === "closed") return endConversation(true);
    if (f.owner && f.owner !== "agent") setAgent(null);
    if (f.agent && f.agent.name) setAgent(f.agent);
    var st = load();
    if (fresh && st.contact && !identity) controls.push(contactFrame(st.contact));
    if (identity) { controls.push(contactFrame(identity)); identity = null; }
    controls.splice(0).forEach(frame);
    flushOutbox();
    readSent = 0;
    markRead();
    joinWaiters.splice(0).forEach((fn) => { fn(); });
  }

  function flushOutbox() {
    (load().outbox || []).forEach((item) => {
      if (!pendingEls[item.client_msg_id] && !bySeqClient(item.client_msg_id)) pendingBubble(item);
      var f = { type: "message", client_msg_id: item.client_msg_id, text: item.text || "" };
      if (item.media) f.media = item.media;
      frame(f);
    });
    markQueued();
  }

  function bySeqClient(cid) {
    for (var k in seen) if (seen[k].getAttribute("data-client-msg-id") === cid) return seen[k];
    return null;
  }

  function dropOutbox(cid) {
    update((s) => {
      s.outbox = (s.outbox || []).filter((i) => { return i.client_msg_id !== cid; });
    });
  }

  function onError(f) {
    var cid = f.client_msg_id;
    if (f.code === "rate_limited") {
      var wait = Math.max(1, +f.retry_after || 5);
      if (!joined) { nextDelay = wait * 1000; drop(); schedule(); return; }
      if (cid) {
        say(fmt(S.retry_in, { s: wait }), wait * 1000);
        setTimeout(() => { if (joined) flushOutbox(); }, wait * 1000);
      }
      return;
    }
    if (f.code === "invalid_contact") return contactError(f.error);
    var msg = str(f.error);
    if (cid) {
      if (/closed/i.test(msg)) {
        // Written into a conversation that had ended: offered again in the next one.
        var gone = pendingEls[cid] && pendingEls[cid]._m;
        if (gone && gone.content) unsent = gone.content;
        dropOutbox(cid);
        failBubble(cid, msg);
        return endConversation();
      }
      dropOutbox(cid);
      return failBubble(cid, msg);
    }
    if (!joined) {
      if (/conversation not found/i.test(msg)) {
        // The server no longer knows the conversation (a wiped database): start afresh and
        // send what is queued into the new one rather than retrying forever.
        forget();
        resetView();
        showWelcome();
        (load().outbox || []).forEach(pendingBubble);
        drop();
        attempt = 0;
        nextDelay = 0;
        if ((load().outbox || []).length) schedule(); else connWanted = false;
        refresh();
        return;
      }
      if (/bot not found|origin/i.test(msg)) {
        stopped = true;
        warn(msg);
        drop();
        return;
      }
      drop();
      schedule();
      return;
    }
    // A read or typing frame into a conversation closed while no tab watched: the first news
    // of it after a reload.
    if (/conversation is closed/i.test(msg)) return endConversation();
    warn(msg);
  }

  function onStorage(e) {
    if (e.key !== KEY) return;
    var st = load();
    if ((st.conversation_id || null) === convId) return recount();
    // Another tab of this visitor started (or forgot) a conversation: follow it, so both
    // tabs show the same one live.
    drop();
    clearTimeout(retryTimer);
    isEnded = false;
    resetView();
    convId = st.conversation_id || null;
    bootSeq = st.last_seq || 0;
    readSeq = st.read_seq || 0;
    connWanted = false;
    if (convId) connect(); else showWelcome();
    refresh();
  }

  function forget() {
    convId = null;
    update((s) => { s.conversation_id = null; s.last_seq = 0; s.read_seq = 0; s.agent = null; });
  }

  function resetView() {
    log.textContent = "";
    seen = {}; pendingEls = {}; streams = {}; repliedTo = {};
    ghost = null; maxSeq = 0; bootSeq = 0; readSeq = 0; readSent = 0; agentRead = 0; unread = 0;
    awayShown = false;
    setAgent(null, true);
    showTyping(null);
    setBadge();
  }

  function newConversation() {
    drop();
    clearTimeout(retryTimer);
    connWanted = false;
    isEnded = false;
    forget();
    update((s) => { s.outbox = []; });
    resetView();
    showWelcome();
    endedBox.hidden = true;
    refresh();
    if (unsent) { input.value = unsent; unsent = ""; grow(); sendBtn.disabled = false; }
    input.focus();
  }

  // `keep`: the socket stays for the history a resumed, already closed conversation replays.
  function endConversation(keep) {
    if (isEnded) return;
    isEnded = true;
    connWanted = false;
    showTyping(null);
    system(S.ended).classList.add("fd-tail");
    if (!keep) drop();
    conn.hidden = true;
    refresh();
  }

  // ---------------------------------------------------------------- messages
  function msgEl(sender) {
    var e = h("div", "fd-msg");
    e.setAttribute("data-sender", sender);
    var t = e.appendChild(h("div", "fd-text"));
    t.dir = "auto";
    return e;
  }

  function textOf(e) { return e.querySelector(".fd-text"); }

  function fill(e, m) {
    var sender = e.getAttribute("data-sender"), t = textOf(e), content = str(m.content);
    if (sender === "visitor" || sender === "system") t.textContent = content;
    else markdown(t, content);
    t.hidden = !content;
    var old = e.querySelector(".fd-media");
    if (old) old.remove();
    if (m.media) {
      var md = mediaEl(m.media);
      if (md) t.after(md);
    }
    if (sender === "agent") {
      var name = (m.metadata && m.metadata.agent && str(m.metadata.agent.name)) || (agent && agent.name) || str(cfg.title);
      var au = e.querySelector(".fd-author") || e.insertBefore(h("div", "fd-author"), e.firstChild);
      au.textContent = name;
    }
    if (m.created_at) {
      try { e.title = new Date(m.created_at).toLocaleTimeString(lang, { hour: "numeric", minute: "2-digit" }); } catch (err) { /* no Intl */ }
    }
    e._m = m;
  }

  function mediaUrl(u) {
    u = str(u);
    if (/^\/(?![\/\\])/.test(u)) return BASE + u;
    var href = safeHref(u);
    return href && /^https?:/.test(href) ? href : null;
  }

  function mediaEl(media) {
    var items = Array.isArray(media) ? media : [media], box = h("div", "fd-media"), any = false;
    items.forEach((it) => {
      if (!it || typeof it !== "object") return;
      var url = mediaUrl(it.url);
      if (!url) return;
      any = true;
      var name = str(it.filename) || S.file;
      var a = box.appendChild(link(url, ""));
      if (it.type === "image" || /^image\//.test(str(it.content_type))) {
        a.className = "fd-image";
        var img = a.appendChild(h("img"));
        img.src = url;
        img.alt = name;
        img.loading = "lazy";
        img.addEventListener("load", () => { scrollDown(false); });
      } else {
        a.className = "fd-filelink";
        a.appendChild(icon("file"));
        var meta = a.appendChild(h("span", "fd-file-meta"));
        meta.appendChild(h("span", "fd-file-name", name));
        if (it.size >= 0) meta.appendChild(h("span", "fd-file-size", size(it.size)));
      }
    });
    return any ? box : null;
  }

  // New lines go before the visitor's still-pending messages (those will get higher seqs) and
  // the "conversation has ended" line (`fd-tail`, shown before a closed one's history replays),
  // and, given a seq, before any stored message with a higher one: an ack racing the replay
  // after a reconnect must not put a message above the ones it answered.
  function insert(e, seq) {
    var ref = null;
    for (var c = log.lastElementChild; c; c = c.previousElementSibling) {
      var at = c.getAttribute("data-seq");
      if (c !== e && !(c.classList.contains("fd-pending") || c.classList.contains("fd-tail") || (seq && at && +at > seq))) break;
      if (c !== e) ref = c;
    }
    if (ref !== e.nextElementSibling || !e.parentNode) log.insertBefore(e, ref);
  }

  function system(text) {
    var e = msgEl("system");
    textOf(e).textContent = text;
    insert(e);
    scrollDown(false);
    return e;
  }

  function showWelcome() {
    var w = str(cfg.welcome_message);
    if (!w || ghost) return;
    // Shown from the config until the visitor writes; the stored welcome (seq 1) replaces it,
    // so opening the panel creates no empty conversation in the clinic's inbox.
    ghost = msgEl("bot");
    ghost.classList.add("fd-welcome");
    fill(ghost, { content: w });
    log.insertBefore(ghost, log.firstChild);
  }

  function pendingBubble(item) {
    if (pendingEls[item.client_msg_id]) return;
    var e = msgEl("visitor");
    e.classList.add("fd-pending");
    e.setAttribute("data-client-msg-id", item.client_msg_id);
    fill(e, { content: item.text, media: item.media, created_at: Date.now() });
    e.appendChild(h("div", "fd-status"));
    pendingEls[item.client_msg_id] = e;
    log.appendChild(e);
    markQueued();
  }

  function markQueued() {
    var offline = !joined && connWanted;
    for (var k in pendingEls) {
      var st = pendingEls[k].querySelector(".fd-status");
      if (st && !pendingEls[k].classList.contains("fd-failed")) st.textContent = offline ? S.queued : S.pending;
    }
  }

  function failBubble(cid, why) {
    var e = pendingEls[cid];
    if (!e) return;
    delete pendingEls[cid];
    e.classList.remove("fd-pending");
    e.classList.add("fd-failed");
    var st = e.querySelector(".fd-status");
    st.textContent = S.failed;
    st.title = why;
    refresh();
  }

  function onStored(m, ackCid, duplicate) {
    if (!m || typeof m.seq !== "number") return;
    var cid = m.client_msg_id || ackCid, node = seen[m.seq], e = cid && pendingEls[cid], own = !!e;
    if (cid && m.sender === "visitor") dropOutbox(cid);
    if (e) {
      delete pendingEls[cid];
      if (node) { e.remove(); return; }
      e.classList.remove("fd-pending", "fd-failed");
      var st = e.querySelector(".fd-status");
      if (st) st.remove();
      fill(e, m);
      insert(e, m.seq);
    } else {
      if (node) return;
      var sender = /^(visitor|bot|agent|system)$/.test(m.sender) ? m.sender : "system";
      if (sender === "bot" && m.reply_to != null && streams[m.reply_to]) {
        e = streams[m.reply_to];
        delete streams[m.reply_to];
        e.classList.remove("fd-streaming");
      } else if (sender === "bot" && ghost && m.seq === 1) {
        e = ghost;
        e.classList.remove("fd-welcome");
      } else {
        e = msgEl(sender);
        insert(e, m.seq);
      }
      if (m.client_msg_id) e.setAttribute("data-client-msg-id", m.client_msg_id);
      fill(e, m);
      if (!Object.keys(streams).length) log.removeAttribute("aria-busy");
    }
    if (e === ghost) ghost = null;
    else if (ghost && m.seq === 1) { ghost.remove(); ghost = null; }
    e.setAttribute("data-seq", String(m.seq));
    seen[m.seq] = e;
    if (m.reply_to != null && m.sender === "bot") repliedTo[m.reply_to] = true;
    stored(m, own && !duplicate);
  }

  function stored(m, acked) {
    if (m.seq > maxSeq) maxSeq = m.seq;
    update((s) => { if (s.conversation_id === convId && !(s.last_seq >= m.seq)) s.last_seq = m.seq; });
    var fresh = m.seq > bootSeq, fromUs = m.sender === "bot" || m.sender === "agent";
    if (fromUs) {
      if (m.sender === "agent" || !agent) showTyping(null);
      if (fresh && (!isOpen || D.hidden)) beep();
    }
    var hand = m.metadata && m.metadata.handoff;
    if (m.sender === "bot" && hand && hand.agents_online === 0) awayShown = true;
    if (m.sender === "agent") awayShown = false;
    // Between the visitor's stored message and the first chunk of the bot's answer.
    if (acked && m.sender === "visitor" && !agent && !repliedTo[m.seq]) showTyping("dots");
    if (fresh) {
      emit("message", {
        seq: m.seq, sender: m.sender, content: str(m.content), text: str(m.content), media: m.media || null, created_at: m.created_at,
        agent: m.sender === "agent" ? (m.metadata && m.metadata.agent) || null : undefined
      });
    }
    recount();
    groupAuthors();
    updateSeen();
    refresh();
    scrollDown(m.sender === "visitor");
    markRead();
  }

  function onDelta(f) {
    var key = f.reply_to != null ? f.reply_to : "?";
    if (repliedTo[key]) return;
    var e = streams[key];
    if (!e) {
      e = streams[key] = msgEl("bot");
      e.classList.add("fd-streaming");
      e.setAttribute("data-reply-to", String(key));
      e._raw = "";
      insert(e);
      // Announced once complete (at done), not chunk by chunk.
      log.setAttribute("aria-busy", "true");
      showTyping(null);
      refresh();
    }
    e._raw += str(f.text);
    markdown(textOf(e), e._raw);
    scrollDown(false);
  }

  // An agent's name heads a run of their messages, not every bubble.
  function groupAuthors() {
    var prev = null;
    Array.from(log.children).forEach((e) => {
      var au = e.querySelector(".fd-author");
      if (au) e.classList.toggle("fd-cont", !!prev && prev.getAttribute("data-sender") === "agent" &&
        (prev.querySelector(".fd-author") || {}).textContent === au.textContent);
      prev = e;
    });
  }

  function updateSeen() {
    var old = log.querySelector(".fd-seen");
    if (old) old.remove();
    var mine = log.querySelectorAll('.fd-msg[data-sender="visitor"][data-seq]');
    var last = mine[mine.length - 1];
    if (last && agentRead >= +last.getAttribute("data-seq")) last.appendChild(h("div", "fd-seen", S.seen));
  }

  // ---------------------------------------------------------------- typing
  function showTyping(who) {
    if (!typingEl) return;
    clearTimeout(typingTimer);
    if (who === "dots") {
      if (Object.keys(streams).length) return;
      who = "bot";
    }
    typingEl.hidden = !who;
    if (!who) return;
    typingEl.setAttribute("data-who", who);
    var name = who === "agent" && agent ? agent.name : str(cfg.title) || S.launcher;
    typingEl.querySelector(".fd-typing-label").textContent = fmt(S.typing, { name: name });
    // Typing "on" with no "off" (a closed agent tab) must not leave dots forever.
    typingTimer = setTimeout(() => { showTyping(null); }, who === "bot" ? 30000 : 8000);
    scrollDown(false);
  }

  function typing(on) {
    if (!joined) return;
    clearTimeout(myTypingTimer);
    var now = Date.now();
    if (on && (!myTyping || now - myTypingAt > 3000)) {
      myTyping = true;
      myTypingAt = now;
      frame({ type: "typing", on: true });
    }
    if (on) myTypingTimer = setTimeout(() => { typing(false); }, 4000);
    else if (myTyping) { myTyping = false; frame({ type: "typing", on: false }); }
  }

  // ---------------------------------------------------------------- agents
  function setAgent(a, quiet) {
    agent = a && a.name ? { id: a.id, name: str(a.name) } : null;
    agentEl.textContent = agent ? agent.name : "";
    agentEl.hidden = !agent;
    subtitleEl.hidden = !!agent || !cfg.subtitle;
    avatar(agent && agent.name);
    if (!quiet) update((s) => { s.agent = agent; });
  }

  function onAgentJoined(a) {
    if (!a || !a.name) return;
    setAgent(a);
    showTyping(null);
    awayShown = false;
    system(fmt(S.agent_joined, { name: a.name }));
    refresh();
  }

  function onAgentLeft(a) {
    var name = (a && a.name) || (agent && agent.name);
    setAgent(null);
    showTyping(null);
    if (name) system(fmt(S.agent_left, { name: name }));
  }

  // ---------------------------------------------------------------- sending
  function submitComposer() {
    var text = input.value;
    if (!text.trim() || isEnded) return;
    input.value = "";
    grow();
    sendBtn.disabled = true;
    typing(false);
    send(text);
  }

  function send(text, media) {
    text = str(text).replace(/^\s+|\s+$/g, "");
    if ((!text && !media) || isEnded) return;
    var item = { client_msg_id: uuid(), text: text };
    if (media) item.media = media;
    update((s) => { s.outbox = (s.outbox || []).concat([item]); });
    pendingBubble(item);
    refresh();
    scrollDown(true);
    if (joined) frame({ type: "message", client_msg_id: item.client_msg_id, text: text, media: media || undefined });
    else connect();
  }

  function whenJoined() {
    return new Promise((resolve, reject) => {
      if (joined) return resolve();
      joinWaiters.push(resolve);
      connect();
      setTimeout(() => { reject(new Error("not connected")); }, 20000);
    });
  }

  function typeAllowed(type, types) {
    if (!Array.isArray(types) || !types.length) return true;
    return types.some((t) => {
      return t === type || (/\/\*$/.test(t) && type.indexOf(t.slice(0, -1)) === 0);
    });
  }

  function upload(file) {
    var up = cfg.uploads || {};
    if (!up.enabled || isEnded) return;
    // Refused here, before a byte is sent: the visitor learns at once, and we save the upload.
    if (up.max_bytes && file.size > up.max_bytes) return say(fmt(S.too_big, { name: file.name, max: size(up.max_bytes) }));
    if (!typeAllowed(file.type, up.types)) return say(fmt(S.bad_type, { name: file.name }));
    say(fmt(S.uploading, { name: file.name }), 0, true);
    attachBtn.disabled = true;
    whenJoined().then(() => {
      var body = new FormData();
      body.append("bot_id", BOT);
      body.append("conversation_id", convId);
      body.append("file", file, file.name);
      return fetch(BASE + "/widget/uploads", { method: "POST", body: body, credentials: "omit" });
    }).then((r) => {
      return r.json().catch(() => { return {}; }).then((j) => {
        if (r.status === 413) throw new Error(fmt(S.too_big, { name: file.name, max: size(up.max_bytes) }));
        if (r.status === 415) throw new Error(fmt(S.bad_type, { name: file.name }));
        if (!r.ok || !j.url) throw new Error(S.upload_failed);
        say("");
        var ct = str(j.content_type) || file.type;
        send("", [{
          type: /^image\//.test(ct) ? "image" : "file", url: j.url, filename: str(j.filename) || file.name,
          content_type: ct, size: j.size != null ? j.size : file.size
        }]);
      });
    }).catch((e) => {
      say(e && e.message && e.message !== "not connected" && !/fetch/i.test(e.message) ? e.message : S.upload_failed);
    }).then(() => { attachBtn.disabled = false; });
  }

  function say(text, ms, sticky) {
    clearTimeout(noticeTimer);
    notice.textContent = text || "";
    notice.hidden = !text;
    notice.classList.toggle("fd-info", !!sticky);
    if (text && !sticky) noticeTimer = setTimeout(() => { notice.hidden = true; }, ms || 7000);
  }

  // ---------------------------------------------------------------- contact / lead form
  function contactFrame(c) {
    var f = { type: "contact" };
    ["name", "email", "phone", "external_id"].forEach((k) => {
      if (c && c[k] != null && String(c[k]).trim()) f[k] = String(c[k]).trim();
    });
    return f;
  }

  function identify(c) {
    if (!c || typeof c !== "object") return;
    var f = contactFrame(c);
    if (Object.keys(f).length < 2) return;
    if (f.email) update((s) => { s.contact = Object.assign(s.contact || {}, { email: f.email }); });
    // Sent once a conversation exists; identifying alone never starts one.
    if (joined) frame(f); else identity = f;
    refresh();
  }

  function sendContact(f) {
    if (joined) frame(f);
    else { controls.push(f); connect(); }
  }

  function onContactSaved(c) {
    c = c || {};
    update((s) => {
      var k = Object.assign({}, s.contact || {});
      ["name", "email", "phone"].forEach((n) => { if (c[n]) k[n] = c[n]; });
      s.contact = k;
      if (leadSending) s.lead = true;
    });
    if (!leadSending) return refresh();
    leadSending = false;
    leadMode = null;
    leadBox.hidden = true;
    leadBox.textContent = "";
    system(S.lead_thanks);
    refresh();
    if (isOpen && !composer.hidden) input.focus({ preventScroll: true });
  }

  function contactError(msg) {
    leadSending = false;
    var form = leadBox.querySelector("form");
    if (!form) return say(msg);
    form.querySelector(".fd-submit").disabled = false;
    var field = (/contact\.(\w+)/.exec(msg) || [])[1];
    var inp = field && form.querySelector('[name="' + field + '"]');
    if (!inp) return say(msg);
    fieldError(inp, field === "email" ? S.err_email : field === "phone" ? S.err_phone : msg);
    inp.focus();
  }

  function fieldError(inp, text) {
    var err = inp.parentNode.querySelector(".fd-field-error");
    err.textContent = text || "";
    err.hidden = !text;
    if (text) inp.setAttribute("aria-invalid", "true"); else inp.removeAttribute("aria-invalid");
  }

  function leadFields(mode) {
    var lc = cfg.lead_capture || {}, list = [];
    (Array.isArray(lc.fields) ? lc.fields : []).forEach((f) => {
      if (f && /^(name|email|phone)$/.test(f.name) && !list.some((x) => { return x.name === f.name; })) {
        list.push({ name: f.name, required: !!f.required });
      }
    });
    if (mode === "away") {
      // Nobody is online: the email is what lets the team answer at all.
      var em = list.filter((f) => { return f.name === "email"; })[0];
      if (em) em.required = true; else list.push({ name: "email", required: true });
      if (!list.some((f) => { return f.name === "name"; })) list.unshift({ name: "name", required: false });
    }
    if (!list.length) list = [{ name: "name", required: false }, { name: "email", required: true }];
    return list;
  }

  function buildLead(mode) {
    leadBox.textContent = "";
    var lc = cfg.lead_capture || {}, known = load().contact || {};
    var form = leadBox.appendChild(h("form", "fd-lead-form"));
    form.noValidate = true;
    if (mode !== "away") form.appendChild(h("p", "fd-lead-msg", str(lc.message) || S.lead_message));
    leadFields(mode).forEach((f) => {
      var label = form.appendChild(h("label", "fd-field"));
      var cap = label.appendChild(h("span", "fd-label", S[f.name]));
      if (!f.required) cap.appendChild(h("span", "fd-optional", " (" + S.optional + ")"));
      var inp = label.appendChild(h("input"));
      inp.name = f.name;
      inp.type = f.name === "email" ? "email" : f.name === "phone" ? "tel" : "text";
      inp.autocomplete = f.name === "phone" ? "tel" : f.name;
      inp.required = f.required;
      inp.maxLength = 200;
      inp.dir = "auto";
      if (known[f.name]) inp.value = known[f.name];
      var err = label.appendChild(h("span", "fd-field-error"));
      err.id = "fd-err-" + mode + "-" + f.name;
      err.hidden = true;
      inp.setAttribute("aria-describedby", err.id);
      inp.addEventListener("input", () => { if (inp.getAttribute("aria-invalid")) fieldError(inp, ""); });
    });
    var btn = form.appendChild(h("button", "fd-submit", S.submit));
    btn.type = "submit";
    form.addEventListener("submit", (e) => {
      e.preventDefault();
      var bad = null, contact = {};
      form.querySelectorAll("input").forEach((inp) => {
        var v = inp.value.trim(), msg = "";
        if (!v && inp.required) msg = S.err_required;
        else if (v && inp.name === "email" && !/^[^\s@]+@[^\s@]+\.[^\s@]+$/.test(v)) msg = S.err_email;
        else if (v && inp.name === "phone") {
          var digits = v.replace(/\D/g, "").length;
          if (!/^\+?[\d\s().\-\/]+$/.test(v) || digits < 6 || digits > 15) msg = S.err_phone;
        }
        fieldError(inp, msg);
        if (msg && !bad) bad = inp;
        if (v) contact[inp.name] = v;
      });
      if (bad) return bad.focus();
      leadSending = true;
      btn.disabled = true;
      sendContact(contactFrame(contact));
    });
  }

  // ---------------------------------------------------------------- what shows where
  function refresh() {
    if (!log) return;
    var st = load(), lc = cfg.lead_capture || {};
    var visitorSaid = !!log.querySelector('.fd-msg[data-sender="visitor"]');
    var hasEmail = !!(st.contact && st.contact.email);
    var mode = null;
    if (!isEnded && lc.enabled && !st.lead) {
      if (lc.when === "before" && !visitorSaid) mode = "before";
      else if (lc.when !== "before" && visitorSaid) mode = "during";
    }
    if (!isEnded && awayShown && !agent && !hasEmail) mode = "away";
    away.hidden = !awayShown || !!agent || isEnded;
    away.textContent = hasEmail ? S.away_known : S.away;
    if (mode !== leadMode) {
      leadMode = mode;
      if (mode) buildLead(mode); else leadBox.textContent = "";
    }
    leadBox.hidden = !mode;

    composer.hidden = isEnded || mode === "before";
    endedBox.hidden = !isEnded;

    // Quick prompts until the visitor first writes; afterwards the last bot message's replies.
    var labels = [];
    if (!isEnded && mode !== "before" && !Object.keys(streams).length && !log.querySelector(".fd-pending")) {
      if (!visitorSaid) labels = cfg.quick_prompts;
      else {
        var all = log.querySelectorAll(".fd-msg[data-seq]"), last = all[all.length - 1];
        var md = last && last.getAttribute("data-sender") === "bot" && last._m && last._m.metadata;
        if (md) labels = md.quick_replies;
      }
    }
    labels = (Array.isArray(labels) ? labels : []).filter((l) => { return typeof l === "string" && l.trim(); }).slice(0, 12);
    var now = Array.from(choices.children).map((b) => { return b.textContent; }).join("\n");
    if (now !== labels.join("\n")) {
      choices.textContent = "";
      labels.forEach((l) => {
        var b = choices.appendChild(h("button", "fd-choice", l));
        b.type = "button";
        b.dir = "auto";
        b.addEventListener("click", () => {
          choices.hidden = true;
          send(l);
          input.focus({ preventScroll: true });
        });
      });
    }
    choices.hidden = !labels.length;
  }

  function grow() {
    input.style.height = "auto";
    input.style.height = Math.min(input.scrollHeight, 132) + "px";
  }

  function scrollDown(force) {
    if (!body) return;
    var near = body.scrollHeight - body.scrollTop - body.clientHeight < 120;
    // Don't yank a visitor who scrolled up to reread something.
    if (force || near) W.requestAnimationFrame(() => { body.scrollTop = body.scrollHeight; });
  }

  var audio = null, beepAt = 0;
  function beep() {
    if (cfg.sound === false || Date.now() - beepAt < 1500) return;
    // Browsers refuse sound before the visitor has interacted with the page; don't even try.
    if (navigator.userActivation && !navigator.userActivation.hasBeenActive) return;
    var AC = W.AudioContext || W.webkitAudioContext;
    if (!AC) return;
    beepAt = Date.now();
    try {
      audio = audio || new AC();
      if (audio.state === "suspended") audio.resume();
      var t = audio.currentTime;
      [[880, 0], [1318.5, 0.11]].forEach((n) => {
        var o = audio.createOscillator(), g = audio.createGain();
        o.type = "sine";
        o.frequency.value = n[0];
        g.gain.setValueAtTime(0.0001, t + n[1]);
        g.gain.exponentialRampToValueAtTime(0.07, t + n[1] + 0.02);
        g.gain.exponentialRampToValueAtTime(0.0001, t + n[1] + 0.3);
        o.connect(g);
        g.connect(audio.destination);
        o.start(t + n[1]);
        o.stop(t + n[1] + 0.32);
      });
    } catch (e) { /* no sound is fine */ }
  }

  // ---------------------------------------------------------------- live preview
  // frontdesk('configure', partial) shows appearance settings at once, for the console's live
  // preview: primary_color, position, title, subtitle, launcher {text, icon} (or launcher_text,
  // launcher_icon), welcome_message, quick_prompts, language. Display only: nothing is stored.
  function configure(c) {
    if (!c || typeof c !== "object") return;
    ["primary_color", "position", "title", "subtitle", "welcome_message", "quick_prompts", "language"].forEach((k) => {
      if (k in c) cfg[k] = c[k];
    });
    var l = Object.assign({}, cfg.launcher, c.launcher);
    if ("launcher_text" in c) l.text = c.launcher_text;
    if ("launcher_icon" in c) l.icon = c.launcher_icon;
    cfg.launcher = l;
    var t = theme(cfg.primary_color);
    [["--fd-primary", t.primary], ["--fd-on-primary", t.on], ["--fd-accent", t.accent], ["--fd-ring", t.ring]].forEach((p) => {
      host.style.setProperty(p[0], p[1]);
    });
    root.classList.toggle("fd-left", (boot.position || cfg.position) === "bottom-left");
    if ("language" in c) {
      lang = pickLang();
      root.lang = lang;
      S = Object.assign({}, STRINGS.en, STRINGS[lang]);
      var over = cfg.strings || {};
      Object.keys(over).forEach((k) => { if (k in S && typeof over[k] === "string" && over[k]) S[k] = over[k]; });
      input.placeholder = S.placeholder;
      attrs(input, { "aria-label": S.input_label });
      [[sendBtn, S.send], [attachBtn, S.attach], [root.querySelector(".fd-close"), S.close]].forEach((b) => {
        if (b[0]) attrs(b[0], { "aria-label": b[1], title: b[1] });
      });
      attrs(log, { "aria-label": S.messages });
      endedBox.querySelector(".fd-restart").textContent = S.new_conversation;
    }
    titleEl.textContent = str(cfg.title) || S.launcher;
    panel.setAttribute("aria-label", titleEl.textContent);
    subtitleEl.textContent = str(cfg.subtitle);
    subtitleEl.hidden = !!agent || !cfg.subtitle;
    if (!agent) avatar(null);
    launcher.remove();
    buildLauncher();
    launcher.setAttribute("aria-expanded", String(isOpen));
    setBadge();
    if (ghost) { ghost.remove(); ghost = null; }
    if (!convId) showWelcome();
    refresh();
  }
  // On the console's preview page (its tag says data-preview="true"), the console framing it
  // sends unsaved settings as {type: "frontdesk:configure", config} from the same origin.
  function listenForPreview() {
    var tags = D.querySelectorAll("script[data-preview]");
    var mine = Array.prototype.some.call(tags, (s) => { return s.getAttribute("data-preview") === "true" && s.getAttribute("data-bot") === BOT; });
    if (!mine || W.parent === W) return;
    W.addEventListener("message", (e) => {
      var d = e.data;
      if (e.source !== W.parent || e.origin !== W.location.origin || !d || d.type !== "frontdesk:configure") return;
      api("configure", d.config);
    });
  }

  if (D.body) start();
  else D.addEventListener("DOMContentLoaded", start);
})();

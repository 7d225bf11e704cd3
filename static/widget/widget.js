/*! SupportAI chat widget — vanilla JS, no dependencies, no build step.
 *
 * <script src="https://YOUR-SUPPORTAI/widget.js" data-client-id="ci_…" data-assistant-id="…"
 *         data-config-id="…" data-instance-id="primary-widget" async></script>
 *
 * Talks only to the origin it was loaded from (the SupportAI server). Renders inside a
 * closed-off Shadow DOM. Model and knowledge text is never parsed as HTML: a small Markdown
 * renderer builds DOM nodes with textContent; links must be http(s); images are dropped.
 */
(function () {
  "use strict";
  var W = window;
  var D = document;
  var registry = (W.SupportAI = W.SupportAI || { instances: {} });
  registry.instances = registry.instances || {};
  var LIVE_RETRY_MS = 1000; // reconnect after a stream ends; doubled after each failure
  var LIVE_RETRY_MAX_MS = 30000;
  var TYPING_SHOWN_MS = 6000;
  var REFRESH_MARGIN_S = 60;
  // Everything the visitor reads that the operator did not write, per language (en, es, de,
  // fr, pt): chosen from the script's data-locale, else the browser's languages, else English.
  // The operator's own texts (title, greeting, placeholder, launcher label) are shown as set;
  // left at the shipped English default, they are shown in the visitor's language (P.own).
  var STRINGS = {
    en: {
      statusBot: "We typically answer right away",
      statusWaiting: "A member of our team will reply here shortly",
      statusWaitingAway: "Our team is away; we will reply here when we are back",
      statusHuman: "You are chatting with our team",
      statusResolved: "This conversation is resolved",
      talkToPerson: "Talk to a person",
      handoffAsked: "Thanks! A member of our team will reply here. You can keep writing.",
      handoffFailed: "Could not reach our team just now. Please try again.",
      resolved: "Our team marked this conversation as resolved.",
      csatQuestion: "How did we do?",
      csatScore: "{n} out of 5",
      csatComment: "Anything to add? (optional)",
      csatSend: "Send rating",
      csatThanks: "Thanks for your rating!",
      csatFailed: "Could not save your rating. Please try again.",
      offline: "Our team is away right now and back {when}. Leave your email and we will reply there too.",
      offlineUnknown: "Our team is away right now. Leave your email and we will reply there too.",
      awayGreeting: "Our team is away right now and back {when}. The assistant can still help.",
      awayGreetingUnknown: "Our team is away right now. The assistant can still help.",
      emailLabel: "Your email",
      emailSend: "Send",
      emailSaved: "Thanks! We will also reply to {email}.",
      emailInvalid: "Please enter a valid email address.",
      title: "Support",
      launcher: "Chat with us",
      greeting: "Hi! How can we help you today?",
      placeholder: "Type your question…",
      closeChat: "Close chat",
      conversation: "Conversation",
      suggested: "Suggested questions",
      sendMessage: "Send message",
      yourMessage: "Your message",
      poweredBy: "Powered by SupportAI",
      offlineBanner: "You are offline. Messages will send when you are back online.",
      retry: "Retry",
      supportTeam: "Support team",
      sources: "Sources",
      feedbackThanks: "Thanks for the feedback",
      feedbackFailed: "Could not save feedback",
      helpful: "Helpful",
      notHelpful: "Not helpful",
      teamTyping: "Support team is typing",
      assistantTyping: "Assistant is typing",
      sendOffline: "You are offline. This message will be sent when you are back online.",
      unreachable: "Could not reach support. Check your connection.",
      busy: "This chat is busy right now. Please try again in {wait}.",
      noAnswer: "The assistant could not answer just now.",
    },
    es: {
      statusBot: "Solemos responder al instante",
      statusWaiting: "Una persona de nuestro equipo te responderá aquí en breve",
      statusWaitingAway: "Nuestro equipo no está disponible; te responderemos aquí a la vuelta",
      statusHuman: "Estás hablando con nuestro equipo",
      statusResolved: "Esta conversación está resuelta",
      talkToPerson: "Hablar con una persona",
      handoffAsked: "¡Gracias! Una persona de nuestro equipo te responderá aquí. Puedes seguir escribiendo.",
      handoffFailed: "No hemos podido contactar con nuestro equipo. Inténtalo de nuevo.",
      resolved: "Nuestro equipo ha marcado esta conversación como resuelta.",
      csatQuestion: "¿Qué tal lo hemos hecho?",
      csatScore: "{n} de 5",
      csatComment: "¿Algo que añadir? (opcional)",
      csatSend: "Enviar valoración",
      csatThanks: "¡Gracias por tu valoración!",
      csatFailed: "No se ha podido guardar tu valoración. Inténtalo de nuevo.",
      offline: "Nuestro equipo no está disponible ahora y vuelve {when}. Déjanos tu correo y también te responderemos allí.",
      offlineUnknown: "Nuestro equipo no está disponible ahora. Déjanos tu correo y también te responderemos allí.",
      awayGreeting: "Nuestro equipo no está disponible ahora y vuelve {when}. El asistente puede ayudarte igualmente.",
      awayGreetingUnknown: "Nuestro equipo no está disponible ahora. El asistente puede ayudarte igualmente.",
      emailLabel: "Tu correo electrónico",
      emailSend: "Enviar",
      emailSaved: "¡Gracias! También te responderemos a {email}.",
      emailInvalid: "Introduce una dirección de correo válida.",
      title: "Soporte",
      launcher: "Chatea con nosotros",
      greeting: "¡Hola! ¿En qué podemos ayudarte?",
      placeholder: "Escribe tu pregunta…",
      closeChat: "Cerrar el chat",
      conversation: "Conversación",
      suggested: "Preguntas sugeridas",
      sendMessage: "Enviar mensaje",
      yourMessage: "Tu mensaje",
      poweredBy: "Con la tecnología de SupportAI",
      offlineBanner: "No tienes conexión. Los mensajes se enviarán cuando vuelvas a estar en línea.",
      retry: "Reintentar",
      supportTeam: "Equipo de soporte",
      sources: "Fuentes",
      feedbackThanks: "Gracias por tu opinión",
      feedbackFailed: "No se ha podido guardar tu opinión",
      helpful: "Útil",
      notHelpful: "No útil",
      teamTyping: "El equipo de soporte está escribiendo",
      assistantTyping: "El asistente está escribiendo",
      sendOffline: "No tienes conexión. Este mensaje se enviará cuando vuelvas a estar en línea.",
      unreachable: "No se ha podido contactar con soporte. Comprueba tu conexión.",
      busy: "Este chat está ocupado ahora mismo. Inténtalo de nuevo en {wait}.",
      noAnswer: "El asistente no ha podido responder ahora mismo.",
    },
    de: {
      statusBot: "Wir antworten in der Regel sofort",
      statusWaiting: "Jemand aus unserem Team antwortet dir hier in Kürze",
      statusWaitingAway: "Unser Team ist gerade nicht da; wir antworten dir hier, sobald wir zurück sind",
      statusHuman: "Du schreibst mit unserem Team",
      statusResolved: "Diese Unterhaltung ist erledigt",
      talkToPerson: "Mit einem Menschen sprechen",
      handoffAsked: "Danke! Jemand aus unserem Team antwortet dir hier. Du kannst weiterschreiben.",
      handoffFailed: "Unser Team ist gerade nicht erreichbar. Bitte versuche es erneut.",
      resolved: "Unser Team hat diese Unterhaltung als erledigt markiert.",
      csatQuestion: "Wie waren wir?",
      csatScore: "{n} von 5",
      csatComment: "Möchtest du etwas ergänzen? (optional)",
      csatSend: "Bewertung senden",
      csatThanks: "Danke für deine Bewertung!",
      csatFailed: "Deine Bewertung konnte nicht gespeichert werden. Bitte versuche es erneut.",
      offline: "Unser Team ist gerade nicht da und ab {when} zurück. Hinterlasse deine E-Mail-Adresse, dann antworten wir auch dort.",
      offlineUnknown: "Unser Team ist gerade nicht da. Hinterlasse deine E-Mail-Adresse, dann antworten wir auch dort.",
      awayGreeting: "Unser Team ist gerade nicht da und ab {when} zurück. Der Assistent hilft dir trotzdem gern.",
      awayGreetingUnknown: "Unser Team ist gerade nicht da. Der Assistent hilft dir trotzdem gern.",
      emailLabel: "Deine E-Mail-Adresse",
      emailSend: "Senden",
      emailSaved: "Danke! Wir antworten auch an {email}.",
      emailInvalid: "Bitte gib eine gültige E-Mail-Adresse ein.",
      title: "Support",
      launcher: "Schreib uns",
      greeting: "Hallo! Wie können wir dir helfen?",
      placeholder: "Deine Frage…",
      closeChat: "Chat schließen",
      conversation: "Unterhaltung",
      suggested: "Vorgeschlagene Fragen",
      sendMessage: "Nachricht senden",
      yourMessage: "Deine Nachricht",
      poweredBy: "Bereitgestellt von SupportAI",
      offlineBanner: "Du bist offline. Nachrichten werden gesendet, sobald du wieder online bist.",
      retry: "Erneut versuchen",
      supportTeam: "Support-Team",
      sources: "Quellen",
      feedbackThanks: "Danke für dein Feedback",
      feedbackFailed: "Dein Feedback konnte nicht gespeichert werden",
      helpful: "Hilfreich",
      notHelpful: "Nicht hilfreich",
      teamTyping: "Das Support-Team schreibt",
      assistantTyping: "Der Assistent schreibt",
      sendOffline: "Du bist offline. Diese Nachricht wird gesendet, sobald du wieder online bist.",
      unreachable: "Der Support ist nicht erreichbar. Prüfe deine Verbindung.",
      busy: "Dieser Chat ist gerade ausgelastet. Bitte versuche es in {wait} erneut.",
      noAnswer: "Der Assistent konnte gerade nicht antworten.",
    },
    fr: {
      statusBot: "Nous répondons généralement tout de suite",
      statusWaiting: "Un membre de notre équipe va vous répondre ici sous peu",
      statusWaitingAway: "Notre équipe est absente ; nous vous répondrons ici à notre retour",
      statusHuman: "Vous discutez avec notre équipe",
      statusResolved: "Cette conversation est résolue",
      talkToPerson: "Parler à une personne",
      handoffAsked: "Merci ! Un membre de notre équipe va vous répondre ici. Vous pouvez continuer à écrire.",
      handoffFailed: "Impossible de joindre notre équipe pour le moment. Veuillez réessayer.",
      resolved: "Notre équipe a marqué cette conversation comme résolue.",
      csatQuestion: "Comment nous en sommes-nous sortis ?",
      csatScore: "{n} sur 5",
      csatComment: "Quelque chose à ajouter ? (facultatif)",
      csatSend: "Envoyer la note",
      csatThanks: "Merci pour votre note !",
      csatFailed: "Impossible d’enregistrer votre note. Veuillez réessayer.",
      offline: "Notre équipe est absente pour le moment et revient {when}. Laissez votre e-mail et nous vous répondrons aussi par ce biais.",
      offlineUnknown: "Notre équipe est absente pour le moment. Laissez votre e-mail et nous vous répondrons aussi par ce biais.",
      awayGreeting: "Notre équipe est absente pour le moment et revient {when}. L’assistant peut tout de même vous aider.",
      awayGreetingUnknown: "Notre équipe est absente pour le moment. L’assistant peut tout de même vous aider.",
      emailLabel: "Votre e-mail",
      emailSend: "Envoyer",
      emailSaved: "Merci ! Nous vous répondrons aussi à {email}.",
      emailInvalid: "Veuillez saisir une adresse e-mail valide.",
      title: "Assistance",
      launcher: "Discutez avec nous",
      greeting: "Bonjour ! Comment pouvons-nous vous aider ?",
      placeholder: "Posez votre question…",
      closeChat: "Fermer le chat",
      conversation: "Conversation",
      suggested: "Questions suggérées",
      sendMessage: "Envoyer le message",
      yourMessage: "Votre message",
      poweredBy: "Propulsé par SupportAI",
      offlineBanner: "Vous êtes hors ligne. Les messages partiront dès que vous serez de nouveau en ligne.",
      retry: "Réessayer",
      supportTeam: "Équipe d’assistance",
      sources: "Sources",
      feedbackThanks: "Merci pour votre avis",
      feedbackFailed: "Impossible d’enregistrer votre avis",
      helpful: "Utile",
      notHelpful: "Pas utile",
      teamTyping: "L’équipe d’assistance écrit",
      assistantTyping: "L’assistant écrit",
      sendOffline: "Vous êtes hors ligne. Ce message partira dès que vous serez de nouveau en ligne.",
      unreachable: "Impossible de joindre l’assistance. Vérifiez votre connexion.",
      busy: "Ce chat est très sollicité en ce moment. Veuillez réessayer dans {wait}.",
      noAnswer: "L’assistant n’a pas pu répondre pour le moment.",
    },
    pt: {
      statusBot: "Normalmente respondemos na hora",
      statusWaiting: "Alguém da nossa equipa vai responder aqui em breve",
      statusWaitingAway: "A nossa equipa está ausente; responderemos aqui quando voltarmos",
      statusHuman: "Está a falar com a nossa equipa",
      statusResolved: "Esta conversa está resolvida",
      talkToPerson: "Falar com uma pessoa",
      handoffAsked: "Obrigado! Alguém da nossa equipa vai responder aqui. Pode continuar a escrever.",
      handoffFailed: "Não foi possível contactar a nossa equipa agora. Tente novamente.",
      resolved: "A nossa equipa marcou esta conversa como resolvida.",
      csatQuestion: "Como nos saímos?",
      csatScore: "{n} de 5",
      csatComment: "Algo a acrescentar? (opcional)",
      csatSend: "Enviar avaliação",
      csatThanks: "Obrigado pela sua avaliação!",
      csatFailed: "Não foi possível guardar a sua avaliação. Tente novamente.",
      offline: "A nossa equipa está ausente e volta {when}. Deixe o seu e-mail e também responderemos por lá.",
      offlineUnknown: "A nossa equipa está ausente agora. Deixe o seu e-mail e também responderemos por lá.",
      awayGreeting: "A nossa equipa está ausente e volta {when}. O assistente pode ajudar na mesma.",
      awayGreetingUnknown: "A nossa equipa está ausente agora. O assistente pode ajudar na mesma.",
      emailLabel: "O seu e-mail",
      emailSend: "Enviar",
      emailSaved: "Obrigado! Também responderemos para {email}.",
      emailInvalid: "Introduza um endereço de e-mail válido.",
      title: "Suporte",
      launcher: "Fale connosco",
      greeting: "Olá! Como podemos ajudar?",
      placeholder: "Escreva a sua pergunta…",
      closeChat: "Fechar o chat",
      conversation: "Conversa",
      suggested: "Perguntas sugeridas",
      sendMessage: "Enviar mensagem",
      yourMessage: "A sua mensagem",
      poweredBy: "Com tecnologia SupportAI",
      offlineBanner: "Está offline. As mensagens serão enviadas quando voltar a estar online.",
      retry: "Tentar novamente",
      supportTeam: "Equipa de suporte",
      sources: "Fontes",
      feedbackThanks: "Obrigado pela sua opinião",
      feedbackFailed: "Não foi possível guardar a sua opinião",
      helpful: "Útil",
      notHelpful: "Não é útil",
      teamTyping: "A equipa de suporte está a escrever",
      assistantTyping: "O assistente está a escrever",
      sendOffline: "Está offline. Esta mensagem será enviada quando voltar a estar online.",
      unreachable: "Não foi possível contactar o suporte. Verifique a sua ligação.",
      busy: "Este chat está ocupado neste momento. Tente novamente dentro de {wait}.",
      noAnswer: "O assistente não conseguiu responder agora.",
    },
  };
  // "es-MX" → "es"; the first of the page's wishes that the widget speaks, else English.
  function localeChoose(wanted) {
    var list = [].concat(wanted || [], navigator.languages || [], navigator.language || []);
    for (var i = 0; i < list.length; i++) {
      var code = String(list[i] || "").toLowerCase().split(/[-_]/)[0];
      if (STRINGS[code]) return code;
    }
    return "en";
  }
  // Shared by every copy of this script on the page: widgets in one corner stack upwards.
  var stacks = (registry.stacks = registry.stacks || { "bottom-right": 0, "bottom-left": 0 });

  // ---------------------------------------------------------------- small helpers
  // "Monday 09:00" in the visitor's own language and zone; "" when unknown or unreadable.
  function backAtText(backAt, lang) {
    try {
      return backAt ? new Date(backAt).toLocaleString(lang ? [lang] : [], { weekday: "long", hour: "2-digit", minute: "2-digit" }) : "";
    } catch (e) {
      return "";
    }
  }

  function el(tag, attrs, children) {
    var node = D.createElement(tag);
    if (attrs) {
      for (var name in attrs) {
        var value = attrs[name];
        if (value === null || value === undefined || value === false) continue;
        if (name === "text") node.textContent = value;
        else if (name === "cls") node.className = value;
        else if (name.slice(0, 2) === "on") node.addEventListener(name.slice(2), value);
        else node.setAttribute(name, value === true ? "" : value);
      }
    }
    (children || []).forEach(function (child) {
      if (child) node.appendChild(typeof child === "string" ? D.createTextNode(child) : child);
    });
    return node;
  }
  function svg(path, cls) {
    var ns = "http://www.w3.org/2000/svg";
    var s = D.createElementNS(ns, "svg");
    if (cls) s.setAttribute("class", cls);
    s.setAttribute("viewBox", "0 0 24 24");
    s.setAttribute("aria-hidden", "true");
    s.setAttribute("focusable", "false");
    var p = D.createElementNS(ns, "path");
    p.setAttribute("d", path);
    s.appendChild(p);
    return s;
  }
  var ICON = {
    chat: "M4 4h16a2 2 0 0 1 2 2v10a2 2 0 0 1-2 2H8l-4 4V6a2 2 0 0 1 2-2z",
    close: "M6.4 5 5 6.4 10.6 12 5 17.6 6.4 19l5.6-5.6 5.6 5.6 1.4-1.4-5.6-5.6L19 6.4 17.6 5 12 10.6z",
    send: "M3 20.5 21 12 3 3.5v6.6l12 1.9-12 1.9z",
    up: "M2 21h4V9H2v12zm20-11a2 2 0 0 0-2-2h-6.3l1-4.6v-.3c0-.4-.2-.8-.4-1.1L13.2 1 6.6 7.6C6.2 8 6 8.5 6 9v10a2 2 0 0 0 2 2h9c.8 0 1.5-.5 1.8-1.2l3-7.1.2-.7v-2z",
    down: "M22 3h-4v12h4V3zM2 14a2 2 0 0 0 2 2h6.3l-1 4.6v.3c0 .4.2.8.4 1.1l1.1 1L17.4 16.4c.4-.4.6-.9.6-1.4V5a2 2 0 0 0-2-2H7c-.8 0-1.5.5-1.8 1.2l-3 7.1-.2.7v2z",
  };
  function safeUrl(raw) {
    try {
      var url = new URL(String(raw).trim());
      return url.protocol === "https:" || url.protocol === "http:" ? url.href : null;
    } catch (e) {
      return null;
    }
  }
  function sleep(ms) {
    return new Promise(function (resolve) {
      setTimeout(resolve, ms);
    });
  }
  // localStorage keeps the visitor across page loads; where it is blocked (some
  // third-party frames, private modes) the chat still works for this page view.
  var memory = {};
  function storageGet(key) {
    try {
      var stored = W.localStorage.getItem(key);
      if (stored) return JSON.parse(stored) || {};
    } catch (e) {
      /* fall back to memory */
    }
    return JSON.parse(memory[key] || "{}");
  }
  function storageSet(key, value) {
    memory[key] = JSON.stringify(value);
    try {
      W.localStorage.setItem(key, memory[key]);
    } catch (e) {
      /* memory only */
    }
  }
  function contrastText(hex) {
    var n = parseInt(hex.slice(1), 16);
    var lum = 0.299 * (n >> 16) + 0.587 * ((n >> 8) & 255) + 0.114 * (n & 255);
    return lum > 165 ? "#111827" : "#ffffff";
  }

  // ---------------------------------------------------------------- safe Markdown
  // Supports paragraphs, line breaks, headings, lists, quotes, fenced and inline code,
  // bold, italic, [links](https://…), reference links and autolinks. Everything is text.
  var INLINE =
    /(`[^`\n]+`)|(!\[[^\]\n]*\]\s?(?:\([^)\n]*\)|\[[^\]\n]*\]))|(\[([^\]\n]+)\]\(\s*<?([^)\s>]*)>?(?:\s+"[^"\n]*")?\s*\))|(\[([^\]\n]+)\]\[([^\]\n]*)\])|(\*\*([^*\n]+)\*\*|__([^_\n]+)__)|(\*([^*\s][^*\n]*)\*|\b_([^_\s][^_\n]*)_\b)|(<(https?:\/\/[^\s>]+)>|https?:\/\/[^\s<>()\]]+[^\s<>()\].,;:!?'"])/g;

  function inline(text, parent, refs) {
    var last = 0;
    var match;
    INLINE.lastIndex = 0;
    var source = String(text);
    var pieces = [];
    while ((match = INLINE.exec(source))) {
      pieces.push([match.index, match[0].length, match.slice()]);
    }
    pieces.forEach(function (piece) {
      var start = piece[0];
      var m = piece[2];
      if (start > last) parent.appendChild(D.createTextNode(source.slice(last, start)));
      last = start + piece[1];
      if (m[1]) parent.appendChild(el("code", { text: m[1].slice(1, -1) }));
      else if (m[2]) return; // images: never loaded, dropped
      else if (m[3]) link(m[4], m[5], parent, refs);
      else if (m[6]) link(m[7], (refs[(m[8] || m[7]).toLowerCase()] || ""), parent, refs);
      else if (m[9]) inline(m[10] || m[11], parent.appendChild(el("strong")), refs);
      else if (m[12]) inline(m[13] || m[14], parent.appendChild(el("em")), refs);
      else if (m[15]) {
        var href = m[16] || m[15];
        var safe = safeUrl(href);
        parent.appendChild(safe ? anchor(safe, href) : D.createTextNode(href));
      }
    });
    if (last < source.length) parent.appendChild(D.createTextNode(source.slice(last)));
  }
  function anchor(href, label) {
    return el("a", { href: href, target: "_blank", rel: "noopener noreferrer nofollow", text: label });
  }
  function link(label, url, parent, refs) {
    var safe = safeUrl(url);
    if (!safe) {
      inline(label, parent, refs); // unsafe scheme (javascript:, data:…): keep the words only
      return;
    }
    var a = anchor(safe, "");
    inline(label, a, refs);
    parent.appendChild(a);
  }
  function markdown(text) {
    var root = D.createDocumentFragment();
    var refs = {};
    var lines = String(text || "")
      .replace(/\r\n?/g, "\n")
      .split("\n")
      .filter(function (line) {
        var def = /^\s{0,3}\[([^\]]+)\]:\s*<?(\S+?)>?(\s+.*)?$/.exec(line);
        if (def) refs[def[1].toLowerCase()] = def[2];
        return !def;
      });
    var i = 0;
    var paragraph = null;
    var list = null;
    function closeBlocks() {
      paragraph = null;
      list = null;
    }
    while (i < lines.length) {
      var line = lines[i];
      var fence = /^\s*(```|~~~)/.exec(line);
      var heading = /^\s{0,3}#{1,6}\s+(.*?)\s*#*\s*$/.exec(line);
      var bullet = /^\s*[-*+]\s+(.*)$/.exec(line);
      var ordered = /^\s*\d{1,3}[.)]\s+(.*)$/.exec(line);
      var quote = /^\s*>\s?(.*)$/.exec(line);
      if (fence) {
        var code = [];
        i++;
        while (i < lines.length && lines[i].indexOf(fence[1]) === -1) code.push(lines[i++]);
        root.appendChild(el("pre", null, [el("code", { text: code.join("\n") })]));
        closeBlocks();
      } else if (!line.trim()) {
        closeBlocks();
      } else if (/^\s{0,3}([-*_])(\s*\1){2,}\s*$/.test(line)) {
        root.appendChild(el("hr"));
        closeBlocks();
      } else if (heading) {
        var h = el("p", { cls: "h" });
        inline(heading[1], h.appendChild(el("strong")), refs);
        root.appendChild(h);
        closeBlocks();
      } else if (bullet || ordered) {
        var tag = bullet ? "ul" : "ol";
        if (!list || list.tagName.toLowerCase() !== tag) {
          list = root.appendChild(el(tag));
          paragraph = null;
        }
        inline((bullet || ordered)[1], list.appendChild(el("li")), refs);
      } else if (quote) {
        var q = el("blockquote");
        inline(quote[1], q, refs);
        root.appendChild(q);
        closeBlocks();
      } else if (list && /^\s{2,}\S/.test(line)) {
        var item = list.lastChild;
        item.appendChild(el("br"));
        inline(line.trim(), item, refs);
      } else {
        if (!paragraph) {
          paragraph = root.appendChild(el("p"));
          list = null;
        } else {
          paragraph.appendChild(el("br"));
        }
        inline(line, paragraph, refs);
      }
      i++;
    }
    return root;
  }
  registry.renderMarkdown = markdown; // exposed for tests and for the dashboard preview

  // ---------------------------------------------------------------- styles
  var CSS =
    ":host{all:initial!important}" +
    "*{box-sizing:border-box}" +
    // `all:initial` stops inherited host-page styles (letter-spacing, colours…) at the door.
    ".root{all:initial;position:fixed;z-index:2147483000;bottom:var(--sa-bottom);font:14px/1.45 system-ui,-apple-system,'Segoe UI',Roboto,Helvetica,Arial,sans-serif;color:#111827;-webkit-font-smoothing:antialiased}" +
    ".right{right:20px}.left{left:20px}" +
    "button{font:inherit;cursor:pointer}" +
    ".launcher{display:flex;align-items:center;gap:8px;height:52px;padding:0 20px 0 16px;border:0;border-radius:26px;background:var(--sa-primary);color:var(--sa-on-primary);font-weight:600;box-shadow:0 6px 20px rgba(0,0,0,.22);transition:transform .15s}" +
    ".launcher:hover{transform:translateY(-1px)}" +
    ".launcher svg,.icon svg{width:22px;height:22px;fill:currentColor}" +
    ".launcher .x,.open .launcher .c,.open .launcher .l,.open .launcher .dot{display:none}" +
    ".open .launcher{width:52px;padding:0;justify-content:center}.open .launcher .x{display:block}" +
    ".launcher .dot{width:10px;height:10px;border-radius:50%;background:#ef4444;border:2px solid #fff}" +
    ".panel{position:absolute;bottom:68px;width:380px;height:min(640px,calc(100vh - 110px));display:flex;flex-direction:column;background:#fff;border-radius:16px;overflow:hidden;box-shadow:0 12px 48px rgba(0,0,0,.25)}" +
    ".right .panel{right:0}.left .panel{left:0}" +
    ".panel[hidden],.launcher[hidden],[hidden]{display:none!important}" +
    "header{display:flex;align-items:center;gap:12px;padding:16px 16px 16px 20px;background:var(--sa-primary);color:var(--sa-on-primary)}" +
    "header h2{margin:0;font-size:16px;font-weight:650;line-height:1.3}" +
    "header p{margin:2px 0 0;font-size:12px;opacity:.85}" +
    "header div{flex:1;min-width:0}" +
    ".icon{display:inline-flex;align-items:center;justify-content:center;width:36px;height:36px;border:0;border-radius:10px;background:transparent;color:inherit}" +
    ".icon:hover{background:rgba(127,127,127,.18)}" +
    ":focus-visible{outline:3px solid #f59e0b;outline-offset:2px}" +
    ".banner{padding:8px 16px;font-size:13px;background:#fef3c7;color:#78350f;display:flex;gap:8px;align-items:center}" +
    ".banner button{margin-left:auto;border:1px solid currentColor;background:transparent;color:inherit;border-radius:6px;padding:2px 10px}" +
    ".log{flex:1;overflow-y:auto;padding:16px;display:flex;flex-direction:column;gap:10px;background:#f9fafb;overscroll-behavior:contain}" +
    ".msg{max-width:86%;padding:10px 14px;border-radius:14px;word-wrap:break-word;overflow-wrap:anywhere}" +
    ".msg.user{align-self:flex-end;background:var(--sa-primary);color:var(--sa-on-primary);border-bottom-right-radius:4px;white-space:pre-wrap}" +
    ".msg.assistant,.msg.operator{align-self:flex-start;background:#fff;border:1px solid #e5e7eb;border-bottom-left-radius:4px}" +
    ".msg.operator{border-color:#a7f3d0;background:#ecfdf5}" +
    ".who{display:block;font-size:11px;font-weight:600;color:#047857;margin-bottom:2px}" +
    ".msg p{margin:0 0 8px}.msg p:last-child{margin-bottom:0}.msg p.h{margin-top:4px}" +
    ".msg ul,.msg ol{margin:4px 0 8px;padding-left:20px}" +
    ".msg pre{margin:6px 0;padding:8px;background:#f3f4f6;border-radius:6px;overflow-x:auto;font-size:12px}" +
    ".msg code{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;font-size:.92em;background:#f3f4f6;padding:1px 4px;border-radius:4px}" +
    ".msg pre code{padding:0;background:none}" +
    ".msg blockquote{margin:4px 0;padding-left:10px;border-left:3px solid #d1d5db;color:#4b5563}" +
    ".msg a{color:var(--sa-link);text-decoration:underline}" +
    ".msg hr{border:0;border-top:1px solid #e5e7eb}" +
    ".sources{margin-top:8px;padding-top:8px;border-top:1px solid #f0f0f0;font-size:12px;color:#6b7280}" +
    ".sources ol{margin:2px 0 0;padding-left:18px}" +
    ".sources a{color:var(--sa-link)}" +
    ".meta{display:flex;align-items:center;gap:2px;margin-top:6px}" +
    ".meta .icon{width:28px;height:28px;color:#9ca3af}.meta .icon svg{width:16px;height:16px}" +
    ".meta .icon[aria-pressed=true]{color:var(--sa-primary-text)}" +
    ".meta span{font-size:11px;color:#6b7280;margin-left:4px}" +
    ".error{align-self:stretch;display:flex;gap:8px;align-items:center;padding:8px 12px;border-radius:10px;background:#fef2f2;color:#991b1b;font-size:13px}" +
    ".error button{margin-left:auto;border:1px solid #fca5a5;background:#fff;color:#991b1b;border-radius:6px;padding:2px 10px}" +
    ".typing{display:inline-flex;gap:4px;padding:4px 0}" +
    ".typing i{width:7px;height:7px;border-radius:50%;background:#9ca3af;animation:sa-b 1.2s infinite}" +
    ".typing i:nth-child(2){animation-delay:.15s}.typing i:nth-child(3){animation-delay:.3s}" +
    "@keyframes sa-b{0%,60%,100%{opacity:.3;transform:translateY(0)}30%{opacity:1;transform:translateY(-3px)}}" +
    ".suggest{display:flex;flex-wrap:wrap;gap:6px;padding:0 16px 10px;background:#f9fafb}" +
    ".suggest button{border:1px solid var(--sa-primary-text);color:var(--sa-primary-text);background:#fff;border-radius:16px;padding:6px 12px;font-size:13px;text-align:left}" +
    ".suggest button:hover{background:var(--sa-primary);color:var(--sa-on-primary)}" +
    "form{display:flex;align-items:flex-end;gap:8px;padding:10px 12px;border-top:1px solid #e5e7eb;background:#fff}" +
    "textarea{flex:1;resize:none;max-height:120px;min-height:40px;padding:9px 12px;border:1px solid #d1d5db;border-radius:10px;font:inherit;color:#111827;background:#fff;outline:none}" +
    "textarea:focus,textarea:focus-visible{outline:none;border-color:var(--sa-primary-text);box-shadow:0 0 0 3px var(--sa-ring)}" +
    "form .icon{background:var(--sa-primary);color:var(--sa-on-primary);width:40px;height:40px}" +
    "form .icon:hover{background:var(--sa-primary);filter:brightness(1.1)}" +
    "form .icon:disabled{opacity:.5;cursor:default;filter:none}" +
    ".handoff{display:flex;justify-content:center;padding:0 16px 6px;background:#f9fafb}" +
    ".handoff button{border:0;background:none;color:var(--sa-link);text-decoration:underline;font-size:13px;padding:4px 8px}" +
    ".note{align-self:center;max-width:92%;text-align:center;font-size:12px;color:#374151;background:#eef2ff;border-radius:10px;padding:6px 12px}" +
    ".csat{align-self:stretch;background:#fff;border:1px solid #e5e7eb;border-radius:12px;padding:12px}" +
    ".csat p{margin:0 0 8px;font-weight:600}" +
    ".csat .scores{display:flex;gap:6px;margin-bottom:8px}" +
    ".csat .scores button{flex:1;height:36px;border:1px solid #d1d5db;border-radius:8px;background:#fff;color:#111827}" +
    ".csat .scores button[aria-pressed=true]{background:var(--sa-primary);color:var(--sa-on-primary);border-color:var(--sa-primary)}" +
    ".csat textarea{display:block;width:100%;margin-bottom:8px}" +
    ".csat .send{border:0;border-radius:8px;padding:6px 14px;background:var(--sa-primary);color:var(--sa-on-primary)}" +
    ".csat .send:disabled{opacity:.5;cursor:default}" +
    ".csat span{display:block;margin-top:6px;font-size:12px;color:#6b7280}" +
    ".away{align-self:stretch;background:#fff;border:1px solid #e5e7eb;border-radius:12px;padding:12px;font-size:13px}" +
    ".away p{margin:0 0 8px}.away form{display:flex;gap:6px;padding:0;border:0;background:none}" +
    ".away input{flex:1;min-width:0;padding:7px 10px;border:1px solid #d1d5db;border-radius:8px;font:inherit}" +
    ".away button{border:0;border-radius:8px;padding:6px 12px;background:var(--sa-primary);color:var(--sa-on-primary)}" +
    ".foot{padding:0 0 8px;text-align:center;font-size:11px;color:#9ca3af;background:#fff}" +
    ".sr{position:absolute;width:1px;height:1px;overflow:hidden;clip:rect(0 0 0 0);white-space:nowrap}" +
    ".avatar{flex:none;display:flex;align-items:center;justify-content:center;width:36px;height:36px;border-radius:50%;background:rgba(255,255,255,.22);font-weight:700;font-size:16px}" +
    // 16px inputs: phones do not zoom the page when the message box gets focus.
    "@media (max-width:480px){textarea{font-size:16px}.panel{position:fixed;inset:0;width:auto;height:auto;border-radius:0}.right{right:16px}.left{left:16px}.open .launcher{display:none}}" +
    "@media (prefers-reduced-motion:reduce){.typing i{animation:none}.launcher{transition:none}}";

  function adoptStyles(root) {
    try {
      var sheet = new CSSStyleSheet();
      sheet.replaceSync(CSS);
      root.adoptedStyleSheets = [sheet]; // not subject to the host page's style-src CSP
    } catch (e) {
      root.appendChild(el("style", { text: CSS }));
    }
  }

  // ---------------------------------------------------------------- one widget instance
  function Widget(script) {
    var data = script.dataset;
    this.base = new URL(script.src, D.baseURI).origin;
    this.clientId = data.clientId || "";
    this.configId = data.configId || "";
    this.assistantId = data.assistantId || "";
    this.instance = data.instanceId || "";
    this.openOnLoad = data.open === "true";
    this.localeWanted = data.locale || ""; // e.g. data-locale="es"; else the browser's
    this.lang = localeChoose(this.localeWanted);
    this.t = STRINGS[this.lang];
    // Verified visitors: your server signs the signed-in user's id (data-user-hash) or
    // issues a short JWT (data-user-token) with the identity secret; never the secret itself.
    this.identity = identityFrom(
      registry.pendingIdentity !== undefined
        ? registry.pendingIdentity
        : { userId: data.userId, userHash: data.userHash, userToken: data.userToken }
    );
    this.seen = {};
    this.lastId = null;
    this.busy = false;
    this.open = false;
    this.live = null; // the open event stream, if any
    this.liveTimer = null;
    this.liveFailures = 0;
    this.held = []; // live messages that arrived while our own question was being answered
    this.handoffStatus = null; // bot, waiting, human or resolved, once the server has said
    this.answered = false; // the assistant has answered something: the handoff control may show
  }
  var P = Widget.prototype;

  function identityFrom(given) {
    given = given || {};
    var identity = {};
    if (given.userToken) identity.user_token = String(given.userToken);
    else if (given.userId) {
      identity.user_id = String(given.userId);
      if (given.userHash) identity.user_hash = String(given.userHash);
    }
    return identity;
  }
  // What the stored token was minted for: a different signed-in user (or none) needs a new one.
  function identityKey(identity) {
    return identity.user_token ? "t:" + identity.user_token : identity.user_id ? "u:" + identity.user_id + ":" + (identity.user_hash || "") : "";
  }

  P.storeKey = function () {
    return "supportai:" + this.clientId + ":" + (this.instance || "default");
  };
  P.state = function (patch) {
    var current = storageGet(this.storeKey());
    if (patch) {
      for (var k in patch) current[k] = patch[k];
      storageSet(this.storeKey(), current);
    }
    return current;
  };

  // Every call goes to our own API only, with the visitor's bearer token.
  P.request = function (path, options, retried) {
    var self = this;
    options = options || {};
    return self.token().then(function (token) {
      var headers = { Authorization: "Bearer " + token, Accept: options.accept || "application/json" };
      if (options.body) headers["Content-Type"] = "application/json";
      if (options.key) headers["Idempotency-Key"] = options.key;
      return fetch(self.base + path, {
        method: options.method || "GET",
        headers: headers,
        body: options.body ? JSON.stringify(options.body) : undefined,
        mode: "cors",
        credentials: "omit",
        referrerPolicy: "origin",
        cache: "no-store",
        signal: options.signal,
      }).then(function (response) {
        if (response.status === 401 && !retried) {
          self.state({ exp: 0 }); // keep the old token: it proves who the visitor is
          return self.request(path, options, true);
        }
        return response;
      });
    });
  };
  P.json = function (path, options) {
    return this.request(path, options).then(function (response) {
      return response.json().then(
        function (body) {
          if (!response.ok) throw httpError(response, body);
          return body && body.status === "success" ? body.data : body;
        },
        function () {
          throw httpError(response, null);
        }
      );
    });
  };
  // "45 s", "3 min", "2 h": how long Retry-After asks the visitor to wait.
  function waitText(seconds) {
    seconds = seconds > 0 ? seconds : 30;
    if (seconds < 120) return seconds + " s";
    if (seconds < 7200) return Math.ceil(seconds / 60) + " min";
    return Math.ceil(seconds / 3600) + " h";
  }
  function httpError(response, body) {
    var error = new Error((body && body.detail) || "Request failed (" + response.status + ")");
    error.status = response.status;
    error.retryAfter = parseInt(response.headers.get("Retry-After") || "0", 10);
    return error;
  }

  // A token is minted for a public client_id; the previous token (even expired) proves
  // that this is the same visitor, so their sessions stay theirs across page loads.
  P.token = function () {
    var self = this;
    var state = self.state();
    var now = Date.now() / 1000;
    var ident = identityKey(self.identity);
    if ((state.ident || "") !== ident) {
      // Signed in, out, or as someone else: their token and session are not this visitor's.
      state = self.state({ token: null, exp: 0, sessionId: null, ident: ident });
    }
    if (state.token && state.exp - REFRESH_MARGIN_S > now) {
      if (!self.refreshTimer) self.scheduleRefresh(state.exp - now); // a token from an earlier page
      return Promise.resolve(state.token);
    }
    if (self.minting) return self.minting;
    var body = { client_id: self.clientId };
    if (self.configId) body.config_id = self.configId;
    if (state.token) body.visitor_token = state.token;
    for (var field in self.identity) body[field] = self.identity[field];
    self.minting = fetch(self.base + "/api/v1/auth/widget-token", {
      method: "POST",
      headers: { "Content-Type": "application/json", Accept: "application/json" },
      body: JSON.stringify(body),
      mode: "cors",
      credentials: "omit",
      referrerPolicy: "origin",
    })
      .then(function (response) {
        return response.json().then(function (json) {
          if (!response.ok) throw httpError(response, json);
          return json;
        });
      })
      .then(
        function (json) {
          self.minting = null;
          self.state({ token: json.token, exp: Date.now() / 1000 + json.expires_in, ident: ident });
          self.scheduleRefresh(json.expires_in);
          return json.token;
        },
        function (error) {
          self.minting = null;
          throw error;
        }
      );
    return self.minting;
  };
  P.scheduleRefresh = function (seconds) {
    var self = this;
    clearTimeout(self.refreshTimer);
    self.refreshTimer = setTimeout(function () {
      self.state({ exp: 0 });
      self.token().catch(function () {});
    }, Math.max(5, seconds - REFRESH_MARGIN_S) * 1000);
  };

  P.boot = function () {
    var self = this;
    var attempt = 0;
    function tryBoot() {
      return self
        .token()
        .then(function () {
          return self.configId
            ? self.json("/api/v1/widgets/" + encodeURIComponent(self.configId) + "/config")
            : {};
        })
        .then(function (config) {
          if (config.is_active === false) return;
          self.render(config || {});
        })
        .catch(function (error) {
          attempt++;
          // No answer at all (no status): the browser blocked it - an origin the widget does
          // not allow gets no CORS grant, so the page cannot even read the 403 - or the server
          // is down. Say so once, naming this page's origin: a site owner trying the snippet on
          // a host not in the allowed domains saw only the browser's CORS error (found on a
          // new-user walk).
          if (!error.status && attempt === 1 && W.console) {
            var origin = W.location.origin;
            console.warn(
              "SupportAI widget: could not reach " + self.base + " from " + origin + ". If " + origin +
                " is not among the widget's allowed domains (dashboard: Widget, Where it may run), add it;" +
                " otherwise check that " + self.base + " is up. Retrying."
            );
          }
          // Busy (a rate limit, or the limiter unavailable): show the launcher anyway, in the
          // default look; a send says "busy, try again in N s" until the server has room.
          if ((error.status === 429 || error.status === 503) && !self.launcher) {
            self.render({});
            return;
          }
          if (error.status === 403 || error.status === 404 || error.status === 400 || attempt > 3) {
            if (W.console) console.warn("SupportAI widget not started: " + error.message);
            return;
          }
          if (!navigator.onLine) {
            W.addEventListener("online", tryBoot, { once: true });
            return;
          }
          return sleep(1000 * Math.pow(3, attempt - 1)).then(tryBoot);
        });
    }
    return tryBoot();
  };

  // The operator's text as set; left empty or at the shipped English default, the visitor's
  // language's own default.
  P.own = function (value, key) {
    return !value || value === STRINGS.en[key] ? this.t[key] : value;
  };

  P.render = function (config) {
    var self = this;
    self.config = config;
    // The widget's own assistant wins: a widget token may only open sessions with it.
    self.assistantId = config.assistant_id || self.assistantId;
    self.instance = self.instance || config.instance || "default";
    var color = /^#[0-9a-f]{6}$/i.test(config.primary_color || "") ? config.primary_color : "#2563eb";
    var onPrimary = contrastText(color);
    var position = config.position === "bottom-left" ? "bottom-left" : "bottom-right";
    var stack = stacks[position]++;
    var title = self.own(config.title, "title");

    self.host = el("div", { "data-supportai-instance": self.instance });
    var shadow = self.host.attachShadow({ mode: "open" });
    adoptStyles(shadow);
    var root = (self.root = el("div", { cls: "root " + (position === "bottom-left" ? "left" : "right") }));
    self.launcherLabel = self.own(config.launcher_label, "launcher");
    root.style.setProperty("--sa-primary", color);
    root.style.setProperty("--sa-on-primary", onPrimary);
    // Text and rings on white need the colour dark enough to read; fall back to ink.
    root.style.setProperty("--sa-primary-text", onPrimary === "#ffffff" ? color : "#1f2937");
    root.style.setProperty("--sa-link", onPrimary === "#ffffff" ? color : "#1d4ed8");
    root.style.setProperty("--sa-ring", color + "40");
    root.style.setProperty("--sa-bottom", 20 + stack * 68 + "px");

    var ids = "sa-" + self.instance.replace(/[^A-Za-z0-9_-]/g, "");
    self.dot = el("span", { cls: "dot", hidden: true, "aria-hidden": "true" });
    self.launcher = el(
      "button",
      {
        cls: "launcher",
        type: "button",
        "aria-haspopup": "dialog",
        "aria-expanded": "false",
        "aria-controls": ids + "-panel",
        onclick: function () {
          self.setOpen(!self.open);
        },
      },
      [
        svg(ICON.chat, "c"),
        svg(ICON.close, "x"),
        el("span", { cls: "l", text: self.launcherLabel }),
        self.dot,
      ]
    );
    self.status = el("p", { text: self.t.statusBot });
    self.closeButton = el(
      "button",
      {
        cls: "icon",
        type: "button",
        "aria-label": self.t.closeChat,
        onclick: function () {
          self.setOpen(false);
        },
      },
      [svg(ICON.close)]
    );
    self.banner = el("div", { cls: "banner", role: "status", hidden: true });
    self.log = el("div", { cls: "log", role: "log", "aria-live": "polite", "aria-label": self.t.conversation, tabindex: "0" });
    self.suggest = el("div", { cls: "suggest", role: "group", "aria-label": self.t.suggested });
    self.handoffButton = el("button", {
      type: "button",
      text: self.t.talkToPerson,
      onclick: function () {
        self.requestHandoff();
      },
    });
    self.handoffBar = el("div", { cls: "handoff", hidden: true }, [self.handoffButton]);
    self.input = el("textarea", {
      id: ids + "-input",
      rows: "1",
      maxlength: "4000",
      placeholder: self.own(config.placeholder, "placeholder"),
      onkeydown: function (event) {
        if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
          event.preventDefault();
          self.submit();
        }
      },
      oninput: function () {
        self.input.style.height = "auto";
        self.input.style.height = Math.min(120, self.input.scrollHeight) + "px";
      },
    });
    self.sendButton = el("button", { cls: "icon", type: "submit", "aria-label": self.t.sendMessage }, [svg(ICON.send)]);
    var form = el(
      "form",
      {
        onsubmit: function (event) {
          event.preventDefault();
          self.submit();
        },
      },
      [el("label", { cls: "sr", for: ids + "-input", text: self.t.yourMessage }), self.input, self.sendButton]
    );
    self.panel = el(
      "div",
      {
        cls: "panel",
        id: ids + "-panel",
        role: "dialog",
        "aria-modal": "true",
        "aria-labelledby": ids + "-title",
        hidden: true,
        onkeydown: function (event) {
          self.onKey(event);
        },
      },
      [
        el("header", null, [
          el("span", { cls: "avatar", "aria-hidden": "true", text: title.charAt(0).toUpperCase() }),
          el("div", null, [el("h2", { id: ids + "-title", text: title }), self.status]),
          self.closeButton,
        ]),
        self.banner,
        self.log,
        self.suggest,
        self.handoffBar,
        form,
        el("div", { cls: "foot", text: self.t.poweredBy }),
      ]
    );
    root.appendChild(self.panel);
    root.appendChild(self.launcher);
    shadow.appendChild(root);
    self.shadow = shadow;
    (D.body || D.documentElement).appendChild(self.host);

    self.handoffControlUpdate(); // "always": shown before any answer
    // An empty greeting stays empty (none shown); the shipped English one speaks the visitor's language.
    if (config.greeting) self.addMessage({ role: "assistant", content: self.own(config.greeting, "greeting"), greeting: true });
    // Outside business hours the greeting area says so, and when the team is back.
    if (config.team_available === false) {
      var back = backAtText(config.team_back_at, self.lang);
      self.note(back ? self.t.awayGreeting.replace("{when}", back) : self.t.awayGreetingUnknown);
    }
    (config.suggested_questions || []).forEach(function (question) {
      self.suggest.appendChild(
        el("button", {
          type: "button",
          text: question,
          onclick: function () {
            self.send(question);
          },
        })
      );
    });
    W.addEventListener("offline", function () {
      self.showBanner(self.t.offlineBanner);
      self.listen();
    });
    W.addEventListener("online", function () {
      self.showBanner(null);
      self.listen();
    });
    D.addEventListener("visibilitychange", function () {
      self.listen();
    });
    registry.instances[self.instance] = self;
    self.loadHistory().then(function () {
      if (config.auto_open || self.openOnLoad || self.state().open) self.setOpen(true, true);
      self.listen();
    });
  };

  P.showBanner = function (text, retry) {
    var banner = this.banner;
    banner.textContent = "";
    banner.hidden = !text;
    if (!text) return;
    banner.appendChild(el("span", { text: text }));
    if (retry) banner.appendChild(el("button", { type: "button", text: self.t.retry, onclick: retry }));
  };

  P.setOpen = function (open, silent) {
    var self = this;
    self.open = open;
    self.panel.hidden = !open;
    self.root.classList.toggle("open", open);
    self.launcher.setAttribute("aria-expanded", String(open));
    self.launcher.setAttribute("aria-label", open ? self.t.closeChat : self.launcherLabel);
    self.state({ open: open });
    if (open) {
      for (var name in registry.instances) {
        var other = registry.instances[name];
        if (other !== self && other.open) other.setOpen(false, true); // one panel at a time
      }
      self.dot.hidden = true;
      if (!silent || D.activeElement === D.body) self.input.focus();
      self.scrollDown();
      self.listen();
    } else {
      if (!silent) self.launcher.focus();
      self.listen();
    }
  };

  P.onKey = function (event) {
    if (event.key === "Escape") {
      event.stopPropagation();
      this.setOpen(false);
      return;
    }
    if (event.key !== "Tab") return;
    var focusable = Array.prototype.filter.call(
      this.panel.querySelectorAll("button,textarea,a[href],[tabindex]:not([tabindex='-1'])"),
      function (node) {
        return !node.disabled && node.offsetParent !== null;
      }
    );
    if (!focusable.length) return;
    var first = focusable[0];
    var last = focusable[focusable.length - 1];
    var active = this.shadow.activeElement;
    if (event.shiftKey && (active === first || !this.panel.contains(active))) {
      event.preventDefault();
      last.focus();
    } else if (!event.shiftKey && (active === last || !this.panel.contains(active))) {
      event.preventDefault();
      first.focus();
    }
  };

  P.scrollDown = function () {
    this.log.scrollTop = this.log.scrollHeight;
  };

  // ---------------------------------------------------------------- messages
  P.addMessage = function (message) {
    var self = this;
    if (message.id) {
      if (self.seen[message.id]) return self.seen[message.id];
    }
    var role = message.role === "user" ? "user" : message.role === "operator" ? "operator" : "assistant";
    var bubble = el("div", { cls: "msg " + role });
    bubble.body = el("div");
    if (role === "operator") bubble.appendChild(el("span", { cls: "who", text: self.t.supportTeam }));
    bubble.appendChild(bubble.body);
    self.fill(bubble, message);
    self.log.appendChild(bubble);
    if (role !== "user" && !message.greeting) self.suggest.hidden = true;
    if (role === "user") self.suggest.hidden = true;
    self.scrollDown();
    return bubble;
  };
  P.fill = function (bubble, message) {
    var self = this;
    var role = message.role;
    bubble.body.textContent = "";
    if (role === "user") bubble.body.textContent = message.content || "";
    else bubble.body.appendChild(markdown(message.content));
    if (message.id) {
      self.seen[message.id] = bubble;
      bubble.setAttribute("data-id", message.id);
    }
    if (role === "assistant" && !message.greeting && message.id) {
      self.answered = true; // the "after the first answer" handoff control may show now
      self.handoffControlUpdate();
      var sources = (message.sources || []).filter(function (s) {
        return s && (s.title || s.url || s.file);
      });
      if (sources.length && self.config.show_sources !== false) {
        var list = el("ol");
        sources.slice(0, 5).forEach(function (source) {
          var label = source.title || source.url || source.file;
          if (source.page) label += " (p. " + source.page + ")";
          var url = source.url && safeUrl(source.url);
          list.appendChild(el("li", { title: source.snippet || null }, [url ? anchor(url, label) : label]));
        });
        bubble.appendChild(el("div", { cls: "sources" }, [el("span", { text: self.t.sources }), list]));
      }
      if (self.config.collect_feedback !== false) bubble.appendChild(self.feedback(message));
    }
  };
  P.feedback = function (message) {
    var self = this;
    var note = el("span", { "aria-live": "polite" });
    var buttons = [];
    function rate(rating) {
      var pressed = buttons.filter(function (button) {
        return button.getAttribute("aria-pressed") === "true";
      })[0];
      if (pressed && pressed.rating === rating) rating = "none"; // a second click takes it back
      buttons.forEach(function (button) {
        button.setAttribute("aria-pressed", String(button.rating === rating));
      });
      self
        .json("/api/v1/sessions/" + self.state().sessionId + "/messages/" + message.id + "/feedback", {
          method: "POST",
          body: { rating: rating },
        })
        .then(
          function () {
            note.textContent = rating === "none" ? "" : self.t.feedbackThanks;
          },
          function () {
            note.textContent = self.t.feedbackFailed;
          }
        );
    }
    ["up", "down"].forEach(function (rating) {
      var button = el(
        "button",
        {
          cls: "icon",
          type: "button",
          "aria-label": rating === "up" ? self.t.helpful : self.t.notHelpful,
          "aria-pressed": String(message.feedback === rating || (message.rating || "") === rating),
          onclick: function () {
            rate(rating);
          },
        },
        [svg(ICON[rating])]
      );
      button.rating = rating;
      buttons.push(button);
    });
    return el("div", { cls: "meta" }, buttons.concat([note]));
  };
  P.track = function (message) {
    if (message && message.id) this.lastId = message.id;
  };

  P.loadHistory = function () {
    var self = this;
    var sessionId = self.state().sessionId;
    if (!sessionId && (self.identity.user_hash || self.identity.user_token)) {
      // A verified customer on a new device: resume their latest conversation.
      return self
        .json("/api/v1/sessions?page_size=1")
        .then(function (data) {
          var latest = data && data.results && data.results[0];
          if (!latest) return;
          self.state({ sessionId: latest.id });
          return self.loadHistory();
        })
        .catch(function () {});
    }
    if (!sessionId) return Promise.resolve();
    var path = "/api/v1/sessions/" + sessionId + "/messages?page_size=100";
    function page(url, count) {
      return self.json(url).then(function (data) {
        var results = (data && data.results) || data || [];
        results.forEach(function (message) {
          self.addMessage(message);
          self.track(message);
        });
        if (data && data.next && count < 20) {
          var next = new URL(data.next, self.base);
          return page(next.pathname + next.search, count + 1);
        }
      });
    }
    return page(path, 0).catch(function (error) {
      if (error.status === 404 || error.status === 403) self.state({ sessionId: null });
    });
  };

  // Live updates: while the panel is open, one long-lived event stream
  // (GET /api/v1/sessions/{id}/events, server-sent events read over fetch so the bearer
  // token stays in a header) brings operator replies, typing and status changes. The server
  // ends a stream after a few minutes, and a network drop or a server restart ends it too:
  // it is opened again after `?after=` the last message seen, so nothing is missed. A
  // closed panel, a hidden tab or an offline browser holds no connection at all.
  P.listen = function () {
    var self = this;
    var sessionId = self.state().sessionId;
    if (!sessionId || !self.open || D.hidden || !navigator.onLine) {
      self.unlisten();
      return;
    }
    if (self.live && self.live.sessionId === sessionId) return;
    self.unlisten();
    var live = { sessionId: sessionId, controller: W.AbortController ? new AbortController() : null };
    self.live = live;
    var path = "/api/v1/sessions/" + sessionId + "/events" + (self.lastId ? "?after=" + encodeURIComponent(self.lastId) : "");
    var wait = 0;
    self
      .request(path, { accept: "text/event-stream", signal: live.controller && live.controller.signal })
      .then(function (response) {
        if (response.status === 404) {
          self.state({ sessionId: null }); // the session is gone; the next message starts one
          return;
        }
        if (!response.ok || !response.body) {
          var error = httpError(response, null);
          if (response.status === 429 || response.status === 503) wait = (error.retryAfter || 30) * 1000;
          throw error;
        }
        self.liveFailures = 0;
        return self.readEvents(response, live);
      })
      .catch(function () {
        self.liveFailures = Math.min(self.liveFailures + 1, 6);
      })
      .then(function () {
        if (self.live !== live) return; // closed or replaced meanwhile
        self.live = null;
        var delay = wait || Math.min(LIVE_RETRY_MAX_MS, LIVE_RETRY_MS * Math.pow(2, self.liveFailures));
        clearTimeout(self.liveTimer);
        self.liveTimer = setTimeout(function () {
          self.listen();
        }, delay * (0.75 + Math.random() / 2));
      });
  };
  P.unlisten = function () {
    clearTimeout(this.liveTimer);
    var live = this.live;
    this.live = null;
    if (live && live.controller) live.controller.abort();
  };
  P.readEvents = function (response, live) {
    var self = this;
    var reader = response.body.getReader();
    var decoder = new TextDecoder();
    var buffer = "";
    function handle(block) {
      var event = "message";
      var data = [];
      block.split("\n").forEach(function (line) {
        if (line.indexOf("event:") === 0) event = line.slice(6).trim();
        else if (line.indexOf("data:") === 0) data.push(line.slice(5).replace(/^ /, ""));
      });
      if (!data.length) return; // a comment (": ping") or the retry field
      var payload;
      try {
        payload = JSON.parse(data.join("\n"));
      } catch (e) {
        return;
      }
      if (event === "message") self.liveMessage(payload);
      else if (event === "status") self.liveStatus(payload.handoff_status);
      else if (event === "typing") self.showTyping();
    }
    function pump() {
      return reader.read().then(function (chunk) {
        if (chunk.done || self.live !== live) return;
        buffer += decoder.decode(chunk.value, { stream: true }).replace(/\r\n?/g, "\n");
        var index;
        while ((index = buffer.indexOf("\n\n")) !== -1) {
          var block = buffer.slice(0, index);
          buffer = buffer.slice(index + 2);
          handle(block);
        }
        return pump();
      });
    }
    return pump();
  };
  P.liveMessage = function (message) {
    var self = this;
    if (!message || !message.id) return;
    // Our own question and its answer are shown by send(): hold what arrives meanwhile.
    if (self.busy) {
      self.held.push(message);
      return;
    }
    if (message.role === "operator") self.hideTyping();
    if (!self.seen[message.id]) self.addMessage(message);
    self.track(message);
  };
  P.liveStatus = function (status) {
    var previous = this.handoffStatus;
    this.handoffStatusSet(status, false);
    // Handed to the team without asking (unanswered questions, a thumbs-down, the backend)
    // while it is away: say when it is back and ask for an email, as when the visitor asks.
    var handed = status === "waiting" && previous && previous !== "waiting" && previous !== "human";
    if (handed && this.config && this.config.team_available === false) this.awayUnlessAddressKnown(this.config.team_back_at);
  };
  // The away card asks for an email: not of a visitor whose address the session already has
  // (given before, or proven by the organization's server for a verified visitor).
  P.awayUnlessAddressKnown = function (backAt) {
    var self = this;
    var sessionId = self.state().sessionId;
    if (!sessionId) return self.awayCard(backAt);
    self.json("/api/v1/sessions/" + sessionId).then(
      function (session) {
        if (!(session && session.handoff_email)) self.awayCard(backAt);
      },
      function () {
        self.awayCard(backAt);
      }
    );
  };

  // ---------------------------------------------------------------- support desk
  // bot → waiting (a person was asked for) → human (an operator has it) → resolved.
  P.handoffStatusSet = function (status, asked) {
    var self = this;
    if (!status) return;
    var previous = self.handoffStatus;
    self.handoffStatus = status;
    self.status.textContent =
      status === "waiting"
        ? self.config && self.config.team_available === false
          ? self.t.statusWaitingAway // outside business hours: not "shortly"
          : self.t.statusWaiting
        : status === "human"
          ? self.t.statusHuman
          : status === "resolved"
            ? self.t.statusResolved
            : self.t.statusBot;
    // A note in the conversation when it changes while the visitor is here (not when an
    // old status is merely read back after a reload).
    if (status !== previous && (asked || previous)) {
      if (status === "waiting") self.note(self.t.handoffAsked);
      else if (status === "resolved") self.note(self.t.resolved);
    }
    if (status === "resolved" && previous !== "resolved") self.csatOffer();
    self.handoffControlUpdate();
  };
  P.note = function (text) {
    this.log.appendChild(el("div", { cls: "note", role: "status", text: text }));
    this.scrollDown();
  };
  P.handoffControlUpdate = function () {
    if (!this.handoffBar) return;
    var mode = (this.config && this.config.human_handoff) || "after_answer";
    var free = this.handoffStatus !== "waiting" && this.handoffStatus !== "human";
    this.handoffBar.hidden = !(mode !== "off" && free && (mode === "always" || this.answered));
  };
  // Asking again is harmless (the server makes one handoff of it): the answer says whether
  // the team is at work, and outside business hours the visitor is asked for an email.
  P.requestHandoff = function () {
    var self = this;
    self.handoffButton.disabled = true;
    return self
      .ensureSession()
      .then(function (sessionId) {
        return self.json("/api/v1/sessions/" + sessionId + "/handoff", { method: "POST", body: {} });
      })
      .then(
        function (session) {
          self.handoffStatusSet(session.handoff_status, true);
          if (session.team_available === false && !session.handoff_email) self.awayCard(session.team_back_at);
          self.listen(); // operator replies arrive on the session's live stream
        },
        function () {
          self.note(self.t.handoffFailed);
        }
      )
      .then(function () {
        self.handoffButton.disabled = false;
      });
  };
  P.awayCard = function (backAt) {
    var self = this;
    if (self.away) return;
    var when = backAtText(backAt, self.lang);
    var note = el("span", { "aria-live": "polite" });
    // An error about an earlier attempt goes once the visitor edits the address.
    var input = el("input", {
      type: "email",
      autocomplete: "email",
      maxlength: "254",
      "aria-label": self.t.emailLabel,
      placeholder: self.t.emailLabel,
      oninput: function () {
        note.textContent = "";
      },
    });
    var card = el("div", { cls: "away", role: "group" }, [
      el("p", { text: when ? self.t.offline.replace("{when}", when) : self.t.offlineUnknown }),
      el(
        "form",
        {
          onsubmit: function (event) {
            event.preventDefault();
            var email = input.value.trim();
            if (!email) return;
            note.textContent = "";
            self
              .json("/api/v1/sessions/" + self.state().sessionId + "/handoff", { method: "POST", body: { email: email } })
              .then(
                function () {
                  card.textContent = "";
                  card.appendChild(el("p", { text: self.t.emailSaved.replace("{email}", email) }));
                },
                function () {
                  note.textContent = self.t.emailInvalid;
                }
              );
          },
        },
        [input, el("button", { type: "submit", text: self.t.emailSend })]
      ),
      note,
    ]);
    self.away = card;
    self.log.appendChild(card);
    self.scrollDown();
  };
  // After a resolution: one 1-5 rating with an optional comment (remembered per
  // resolution, so a reload does not ask again).
  P.csatOffer = function () {
    var self = this;
    var sessionId = self.state().sessionId;
    if (!sessionId) return;
    self.json("/api/v1/sessions/" + sessionId).then(
      function (session) {
        var resolution = session && session.resolved_at;
        if (!resolution || session.handoff_status !== "resolved") return;
        if (self.state().csatRated === resolution || self.csatShown === resolution) return;
        self.csatShown = resolution;
        self.csatCard(sessionId, resolution);
      },
      function () {}
    );
  };
  P.csatCard = function (sessionId, resolution) {
    var self = this;
    var score = 0;
    var buttons = [];
    var note = el("span", { "aria-live": "polite" });
    var comment = el("textarea", { rows: "2", maxlength: "2000", "aria-label": self.t.csatComment, placeholder: self.t.csatComment });
    var send = el("button", { cls: "send", type: "button", text: self.t.csatSend, disabled: true });
    for (var n = 1; n <= 5; n++) {
      (function (value) {
        var button = el("button", {
          type: "button",
          text: String(value),
          "aria-label": self.t.csatScore.replace("{n}", value),
          "aria-pressed": "false",
          onclick: function () {
            score = value;
            send.disabled = false;
            buttons.forEach(function (other, index) {
              other.setAttribute("aria-pressed", String(index + 1 === value));
            });
          },
        });
        buttons.push(button);
      })(n);
    }
    var card = el("div", { cls: "csat", role: "group", "aria-label": self.t.csatQuestion }, [
      el("p", { text: self.t.csatQuestion }),
      el("div", { cls: "scores" }, buttons),
      comment,
      send,
      note,
    ]);
    send.onclick = function () {
      if (!score) return;
      send.disabled = true;
      self
        .json("/api/v1/sessions/" + sessionId + "/csat", {
          method: "POST",
          body: { score: score, comment: comment.value.trim() },
        })
        .then(
          function () {
            self.state({ csatRated: resolution });
            card.textContent = "";
            card.appendChild(el("p", { text: self.t.csatThanks }));
          },
          function (error) {
            if (error.status === 409) {
              self.state({ csatRated: resolution }); // rated already, or reopened meanwhile
              card.remove();
              return;
            }
            send.disabled = false;
            note.textContent = self.t.csatFailed;
          }
        );
    };
    self.log.appendChild(card);
    self.scrollDown();
  };
  P.showTyping = function () {
    var self = this;
    if (!self.typing) {
      self.typing = el("div", { cls: "msg operator" }, [
        el("span", { cls: "who", text: self.t.supportTeam }),
        el("span", { cls: "typing", role: "status", "aria-label": self.t.teamTyping }, [el("i"), el("i"), el("i")]),
      ]);
    }
    self.log.appendChild(self.typing);
    self.scrollDown();
    clearTimeout(self.typingTimer);
    self.typingTimer = setTimeout(function () {
      self.hideTyping();
    }, TYPING_SHOWN_MS);
  };
  P.hideTyping = function () {
    clearTimeout(this.typingTimer);
    if (this.typing) this.typing.remove();
  };

  P.ensureSession = function () {
    var self = this;
    var sessionId = self.state().sessionId;
    if (sessionId) return Promise.resolve(sessionId);
    return self
      .json("/api/v1/sessions/", {
        method: "POST",
        body: {
          assistant_id: self.assistantId,
          locale: (self.localeWanted || navigator.language || "en").slice(0, 10),
          metadata: {
            source: "widget",
            page: location.pathname.slice(0, 500),
            // Where the visitor is, for the operator (no query string or fragment: those can
            // carry a site's own tokens).
            url: (location.origin + location.pathname).slice(0, 1000),
            referrer: withoutQuery(D.referrer).slice(0, 1000) || null,
            browser: (navigator.userAgent || "").slice(0, 300),
            widget_id: self.configId || null,
            instance: self.instance,
          },
        },
      })
      .then(function (session) {
        self.state({ sessionId: session.id });
        return session.id;
      });
  };

  P.submit = function () {
    var text = this.input.value.trim();
    if (!text || this.busy) return;
    this.input.value = "";
    this.input.style.height = "auto";
    this.send(text);
  };

  function withoutQuery(address) {
    try {
      var parsed = new URL(address);
      return parsed.origin + parsed.pathname;
    } catch (e) {
      return "";
    }
  }

  function randomKey() {
    var bytes = new Uint8Array(16);
    (W.crypto || W.msCrypto).getRandomValues(bytes);
    return Array.prototype.map
      .call(bytes, function (b) {
        return (b + 256).toString(16).slice(1);
      })
      .join("");
  }

  // One Idempotency-Key per question, reused by every retry: the server stores the
  // question once and answers it once, however often the network makes us resend it.
  P.send = function (text, key) {
    var self = this;
    if (self.busy) return;
    key = key || randomKey();
    self.busy = true;
    self.sendButton.disabled = true;
    var userBubble = self.addMessage({ role: "user", content: text });
    var answer = self.addMessage({ role: "assistant", content: "", greeting: true });
    answer.body.textContent = "";
    answer.body.appendChild(el("span", { cls: "typing", role: "status", "aria-label": self.t.assistantTyping }, [el("i"), el("i"), el("i")]));
    self.scrollDown();
    var attempt = 0;

    function finish() {
      self.busy = false;
      self.sendButton.disabled = false;
      var held = self.held;
      self.held = [];
      held.forEach(function (message) {
        self.liveMessage(message);
      });
      self.listen(); // the first question creates the session: start listening to it
    }
    function fail(error) {
      answer.remove();
      var offline = !navigator.onLine || !error.status;
      var message = !navigator.onLine
        ? self.t.sendOffline
        : offline
        ? self.t.unreachable
        : error.status === 429
          ? self.t.busy.replace("{wait}", waitText(error.retryAfter))
          : error.status >= 500
            ? self.t.noAnswer
            : error.message;
      var retried = false;
      function retry() {
        if (retried || self.busy) return;
        retried = true;
        W.removeEventListener("online", retry);
        box.remove();
        userBubble.remove();
        self.send(text, key);
      }
      var box = el("div", { cls: "error", role: "alert" }, [
        el("span", { text: message }),
        el("button", { type: "button", text: self.t.retry, onclick: retry }),
      ]);
      // Offline: the same question goes out by itself as soon as the connection is back.
      if (!navigator.onLine) W.addEventListener("online", retry);
      self.log.appendChild(box);
      self.scrollDown();
      finish();
    }
    function attemptSend() {
      return self
        .ensureSession()
        .then(function (sessionId) {
          return self.request("/api/v1/sessions/" + sessionId + "/messages", {
            method: "POST",
            accept: "text/event-stream",
            key: key,
            body: { content: text, metadata: { page: location.pathname.slice(0, 500), source: "widget" } },
          });
        })
        .then(function (response) {
          if (response.status === 404) {
            self.state({ sessionId: null }); // the session is gone: start a new one
            var gone = new Error("Session expired");
            gone.status = 0;
            throw gone;
          }
          if (!response.ok) {
            return response.json().then(
              function (body) {
                throw httpError(response, body);
              },
              function () {
                throw httpError(response, null);
              }
            );
          }
          if ((response.headers.get("Content-Type") || "").indexOf("text/event-stream") === -1) {
            return response.json().then(function (body) {
              return body.data || body;
            });
          }
          return self.stream(response, answer);
        })
        .then(function (message) {
          if (message && message.role === "user") {
            // A person is waited for or has it (or this message asked for one): no bot
            // answer; their reply comes live.
            answer.remove();
            self.seen[message.id] = userBubble;
            self.track(message);
            var wasWaiting = self.handoffStatus === "waiting" || self.handoffStatus === "human";
            self.handoffStatusSet(self.handoffStatus === "human" ? "human" : "waiting", true);
            if (!wasWaiting) self.requestHandoff(); // asked in words: learn whether the team is at work
          } else if (message && message.id) {
            answer.body.textContent = "";
            var final = { role: "assistant", id: message.id, content: message.content, sources: message.sources };
            if (answer.parentNode) {
              self.fill(answer, final);
              if (message.in_reply_to) self.seen[message.in_reply_to] = userBubble;
              self.track(message);
            }
          }
          self.scrollDown();
          finish();
        })
        .catch(function (error) {
          // Network failure before an answer: retry with backoff, then let the visitor retry.
          if (!error.status && attempt < 2 && navigator.onLine) {
            attempt++;
            return sleep(1000 * attempt * attempt).then(attemptSend);
          }
          fail(error);
        });
    }
    return attemptSend();
  };

  // Server-sent events over fetch (EventSource cannot POST): `token` events carry text,
  // `done` carries the stored assistant message, `error` a readable failure.
  P.stream = function (response, bubble) {
    var self = this;
    var reader = response.body.getReader();
    var decoder = new TextDecoder();
    var buffer = "";
    var text = "";
    var done = null;
    var pending = false;
    function paint() {
      pending = false;
      bubble.body.textContent = "";
      bubble.body.appendChild(markdown(text));
      self.scrollDown();
    }
    function handle(block) {
      var event = "message";
      var data = [];
      block.split("\n").forEach(function (line) {
        if (line.indexOf("event:") === 0) event = line.slice(6).trim();
        else if (line.indexOf("data:") === 0) data.push(line.slice(5).replace(/^ /, ""));
      });
      if (!data.length) return;
      var raw = data.join("\n");
      var payload;
      try {
        payload = JSON.parse(raw);
      } catch (e) {
        payload = raw;
      }
      if (event === "done") {
        done = payload && payload.data && payload.data.id ? payload.data : payload;
      } else if (event === "error") {
        var error = new Error((payload && payload.detail) || "The assistant could not answer.");
        error.status = (payload && payload.status_code) || 502;
        throw error;
      } else if (event === "token" || event === "message" || event === "delta") {
        var piece =
          typeof payload === "string"
            ? payload
            : payload && (payload.delta || payload.token || payload.content || payload.text || "");
        if (piece) {
          text += piece;
          if (!pending) {
            pending = true;
            (W.requestAnimationFrame || setTimeout)(paint);
          }
        }
      }
    }
    function pump() {
      return reader.read().then(function (chunk) {
        if (chunk.done) {
          if (buffer.trim()) handle(buffer.trim());
          if (!done) {
            var cut = new Error("The answer was interrupted.");
            cut.status = 502;
            throw cut;
          }
          return done;
        }
        buffer += decoder.decode(chunk.value, { stream: true }).replace(/\r\n?/g, "\n");
        var index;
        while ((index = buffer.indexOf("\n\n")) !== -1) {
          var block = buffer.slice(0, index);
          buffer = buffer.slice(index + 2);
          handle(block);
        }
        return done ? done : pump();
      });
    }
    return pump();
  };

  // ---------------------------------------------------------------- start
  function start(script) {
    if (!script || script.getAttribute("data-supportai-started")) return;
    script.setAttribute("data-supportai-started", "1");
    if (!script.dataset.clientId) {
      if (W.console) console.warn("SupportAI widget: data-client-id is missing.");
      return;
    }
    var widget = new Widget(script);
    var go = function () {
      widget.boot();
    };
    if (D.body) go();
    else D.addEventListener("DOMContentLoaded", go);
  }
  var current = D.currentScript;
  // Where this SupportAI server is: the JavaScript SDK's default baseUrl on this page.
  if (current && current.src && !registry.baseUrl) registry.baseUrl = new URL(current.src, D.baseURI).origin;
  if (current && current.dataset && current.dataset.clientId) start(current);
  else
    Array.prototype.forEach.call(D.querySelectorAll("script[data-client-id][src*='widget.js']"), start);
  // After your page signs a user in (or out): SupportAI.identify({userId, userHash}) or
  // SupportAI.identify({userToken}); SupportAI.identify(null) makes the visitor anonymous.
  registry.identify = function (given, instance) {
    if (!instance) registry.pendingIdentity = given || null; // for widgets not started yet
    Object.keys(registry.instances).forEach(function (name) {
      if (instance && name !== instance) return;
      var widget = registry.instances[name];
      widget.identity = identityFrom(given);
      widget.seen = {};
      widget.lastId = null;
      if (widget.log) widget.log.textContent = "";
      if (widget.live && widget.live.controller) widget.live.controller.abort();
      widget.live = null;
      widget
        .token()
        .then(function () {
          return widget.loadHistory();
        })
        .then(function () {
          widget.listen();
        })
        .catch(function (error) {
          if (W.console) console.warn("SupportAI identify failed: " + error.message);
        });
    });
  };
  registry.open = function (instance) {
    var widget = registry.instances[instance || Object.keys(registry.instances)[0]];
    if (widget) widget.setOpen(true);
  };
  registry.close = function (instance) {
    var widget = registry.instances[instance || Object.keys(registry.instances)[0]];
    if (widget) widget.setOpen(false);
  };
})();

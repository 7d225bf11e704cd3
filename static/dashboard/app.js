/* SupportAI dashboard behaviour: progressive enhancement only (every form works without it). */
(function () {
  "use strict";

  function copyText(text, button) {
    var done = function () {
      var label = button.getAttribute("data-label") || button.textContent;
      button.setAttribute("data-label", label);
      button.classList.add("is-copied");
      button.lastChild.textContent = "Copied";
      setTimeout(function () {
        button.lastChild.textContent = label.trim();
        button.classList.remove("is-copied");
      }, 1800);
    };
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(text).then(done, function () { legacyCopy(text); done(); });
    } else {
      legacyCopy(text);
      done();
    }
  }

  function legacyCopy(text) {
    var area = document.createElement("textarea");
    area.value = text;
    area.setAttribute("readonly", "");
    area.style.position = "fixed";
    area.style.opacity = "0";
    document.body.appendChild(area);
    area.select();
    try { document.execCommand("copy"); } catch (e) { /* the text stays selectable */ }
    document.body.removeChild(area);
  }

  document.addEventListener("click", function (event) {
    var copy = event.target.closest("[data-copy]");
    if (copy) {
      var source = document.querySelector(copy.getAttribute("data-copy"));
      if (source) {
        var text = "value" in source && source.value !== undefined ? source.value : source.textContent;
        if (source.select) { source.select(); }
        copyText(text, copy);
      }
      return;
    }
    var dismiss = event.target.closest("[data-dismiss]");
    if (dismiss) { dismiss.parentElement.remove(); return; }
    var confirmButton = event.target.closest("[data-confirm]");
    if (confirmButton && !window.confirm(confirmButton.getAttribute("data-confirm"))) {
      event.preventDefault();
    }
  });

  document.addEventListener("change", function (event) {
    var form = event.target.closest("form[data-autosubmit]");
    if (form || event.target.hasAttribute("data-autosubmit-select")) {
      (form || event.target.form).requestSubmit();
    }
  });

  // Enter sends, Shift+Enter adds a line (chat boxes).
  document.addEventListener("keydown", function (event) {
    var box = event.target.closest("textarea[data-enter-submits]");
    if (box && event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      if (box.value.trim()) { box.form.requestSubmit(); }
    }
  });

  // Drag-and-drop file upload: lists the chosen files; the form posts them all at once.
  function setupDropzone(zone) {
    var input = zone.querySelector("input[type=file]");
    var list = zone.parentElement.querySelector("[data-file-list]");
    var render = function () {
      if (!list) { return; }
      list.innerHTML = "";
      Array.prototype.forEach.call(input.files, function (file) {
        var item = document.createElement("li");
        var name = document.createElement("span");
        name.textContent = file.name;
        var size = document.createElement("span");
        size.className = "muted";
        size.textContent = (file.size / 1024).toFixed(1) + " KB";
        item.appendChild(name);
        item.appendChild(size);
        list.appendChild(item);
      });
    };
    ["dragenter", "dragover"].forEach(function (name) {
      zone.addEventListener(name, function (event) { event.preventDefault(); zone.classList.add("is-over"); });
    });
    ["dragleave", "drop"].forEach(function (name) {
      zone.addEventListener(name, function () { zone.classList.remove("is-over"); });
    });
    zone.addEventListener("drop", function (event) {
      event.preventDefault();
      if (event.dataTransfer && event.dataTransfer.files.length) {
        input.files = event.dataTransfer.files;
        render();
      }
    });
    input.addEventListener("change", render);
  }

  function init(root) {
    Array.prototype.forEach.call(root.querySelectorAll("[data-dropzone]"), setupDropzone);
    Array.prototype.forEach.call(root.querySelectorAll("[data-scroll-bottom]"), function (el) {
      el.scrollTop = el.scrollHeight;
    });
  }

  // A scroll box opened at its bottom (the inbox transcript) stays there when the poller
  // appends messages out of band: the operator sees their own reply and the visitor's next
  // message. One scrolled up to read earlier messages is left where it is.
  document.addEventListener("htmx:oobBeforeSwap", function (event) {
    var box = event.detail.target;
    if (box && box.hasAttribute && box.hasAttribute("data-scroll-bottom")) {
      box.__supportaiAtBottom = box.scrollHeight - box.scrollTop - box.clientHeight < 40;
    }
  });
  document.addEventListener("htmx:oobAfterSwap", function (event) {
    var box = event.detail.target;
    if (box && box.__supportaiAtBottom) { box.scrollTop = box.scrollHeight; }
  });

  // Chat composers: clear the box after a successful send, drop the empty state.
  document.addEventListener("htmx:afterRequest", function (event) {
    var form = event.detail.elt;
    var failed = event.detail.xhr && event.detail.xhr.getResponseHeader("X-Form-Error");
    if (form && form.matches && form.matches("form[data-reset-on-success]") && event.detail.successful && !failed) {
      form.reset();
      var empty = document.getElementById("chat-empty");
      if (empty) { empty.remove(); }
      var box = form.querySelector("textarea");
      if (box) { box.focus(); }
    }
  });

  // The open conversation's transcript poller rests while the tab is hidden; the next tick
  // after it is shown again fetches everything since the last message it has.
  document.addEventListener("htmx:beforeRequest", function (event) {
    var elt = event.detail.elt;
    if (document.hidden && elt && elt.id === "transcript-poller") { event.preventDefault(); }
  });

  // The waiting queue: every open dashboard tab asks every 4 s how many visitors wait for a
  // person, keeps the Inbox badge current and, when a new one arrives, announces it (the
  // title, a desktop notification if the operator allowed them). Hidden tabs ask too: they
  // are the ones that need the notification.
  var QUEUE_POLL_MS = 4000;
  function setupQueue(badge) {
    var url = badge.getAttribute("data-queue-url");
    var seen = null;
    var baseTitle = document.title;
    function show(count) {
      badge.textContent = String(count);
      badge.hidden = !count;
      document.title = count ? "(" + count + ") " + baseTitle : baseTitle;
    }
    function announce(latest) {
      var announcer = document.getElementById("queue-announcer");
      if (announcer) { announcer.textContent = "A visitor is waiting for a person."; }
      if (window.Notification && Notification.permission === "granted") {
        var note = new Notification("A visitor is waiting for a person", { tag: "supportai-" + latest.id });
        note.onclick = function () { window.focus(); window.location.href = latest.url; };
      }
      if (soundOn()) { chime(); }
    }
    function tick() {
      fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } })
        .then(function (response) { return response.ok ? response.json() : null; })
        .then(function (body) {
          if (!body) { return; }
          show(body.waiting);
          var latest = body.latest;
          if (latest && seen !== null && latest.requested_at > seen) { announce(latest); }
          if (latest && (seen === null || latest.requested_at > seen)) { seen = latest.requested_at; }
          if (seen === null) { seen = ""; }
        })
        .catch(function () { /* offline for a moment: the next tick tries again */ })
        .then(function () { setTimeout(tick, QUEUE_POLL_MS); });
    }
    tick();
  }
  // The queue's optional sound: a short two-note tone made with the Web Audio API (no audio
  // file to ship), off unless this browser turned it on (localStorage, per browser like the
  // desktop-notification permission).
  var SOUND_KEY = "supportai.queueSound";
  var audio = null;
  function soundOn() {
    try { return window.localStorage.getItem(SOUND_KEY) === "on"; } catch (e) { return false; }
  }
  function audioContext() {
    var Context = window.AudioContext || window.webkitAudioContext;
    if (!Context) { return null; }
    audio = audio || new Context();
    // Browsers start audio suspended until the page has had a click or a key press.
    if (audio.state === "suspended") { audio.resume(); }
    return audio;
  }
  function chime() {
    var context = audioContext();
    if (!context) { return; }
    var start = context.currentTime;
    [784, 1047].forEach(function (frequency, index) {
      var at = start + index * 0.18;
      var tone = context.createOscillator();
      var gain = context.createGain();
      tone.type = "sine";
      tone.frequency.value = frequency;
      gain.gain.setValueAtTime(0.0001, at);
      gain.gain.exponentialRampToValueAtTime(0.2, at + 0.02);
      gain.gain.exponentialRampToValueAtTime(0.0001, at + 0.16);
      tone.connect(gain);
      gain.connect(context.destination);
      tone.start(at);
      tone.stop(at + 0.18);
    });
  }
  function soundToggleShow(button) {
    var on = soundOn();
    button.setAttribute("aria-pressed", on ? "true" : "false");
    button.textContent = on ? "Sound in this browser: on" : "Sound in this browser: off";
  }
  document.addEventListener("click", function (event) {
    var button = event.target.closest("[data-sound-toggle]");
    if (button) {
      var on = !soundOn();
      try { window.localStorage.setItem(SOUND_KEY, on ? "on" : "off"); } catch (e) { /* private mode */ }
      soundToggleShow(button);
      if (on) { chime(); } // a sample, and this click lets the page play sound later
      return;
    }
    // Any click unlocks audio for the tone that comes later (autoplay rules).
    if (audio === null && soundOn()) { audioContext(); }
  });

  // Saved replies: choosing one puts its text (already filled for this visitor) in the box.
  document.addEventListener("change", function (event) {
    var select = event.target.closest("select[data-insert-into]");
    if (!select || !select.value) { return; }
    var box = document.querySelector(select.getAttribute("data-insert-into"));
    if (box) { box.value = select.value; box.focus(); }
    select.value = "";
  });

  document.addEventListener("click", function (event) {
    var ask = event.target.closest("[data-enable-notifications]");
    if (!ask || !window.Notification) { return; }
    Notification.requestPermission().then(function (permission) {
      ask.textContent = permission === "granted" ? "Desktop notifications are on" : "Notifications blocked by the browser";
      ask.disabled = true;
    });
  });

  document.addEventListener("DOMContentLoaded", function () {
    // After a form post and its redirect, focus lands on the outcome (the flash message),
    // not on <body>: a screen reader reads it and Tab continues from there.
    var outcome = document.querySelector("[data-focus-on-load]");
    if (outcome && (!document.activeElement || document.activeElement === document.body)) { outcome.focus(); }
    var badge = document.querySelector("[data-queue-badge]");
    if (badge) { setupQueue(badge); }
    var toggle = document.querySelector("[data-sound-toggle]");
    if (toggle) { soundToggleShow(toggle); }
  });
  document.addEventListener("DOMContentLoaded", function () { init(document); });
  document.addEventListener("htmx:afterSwap", function (event) { init(event.target); });
})();

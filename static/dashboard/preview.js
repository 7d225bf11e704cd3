/* Widget preview: hand widget.js a token the dashboard minted for this operator's preview
   visitor, so the preview works on the dashboard's own origin even when the widget's
   allowed domains list only the customer's sites. Runs before widget.js. */
(function () {
  "use strict";
  var me = document.currentScript;
  if (!me) { return; }
  var key = "supportai:" + me.getAttribute("data-client-id") + ":" + me.getAttribute("data-instance-id");
  var state = {};
  try { state = JSON.parse(window.localStorage.getItem(key) || "null") || {}; } catch (e) { state = {}; }
  state.token = me.getAttribute("data-token");
  state.exp = Date.now() / 1000 + parseInt(me.getAttribute("data-expires-in"), 10);
  try { window.localStorage.setItem(key, JSON.stringify(state)); } catch (e) { /* private mode: widget mints its own */ }
})();

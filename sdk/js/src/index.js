/**
 * SupportAI JavaScript SDK (ES module, no dependencies; Node 18+ and browsers).
 *
 *   import { ChatSupportAI } from "supportgenie-sdk";
 *   const client = new ChatSupportAI({ apiKey: "sk_…", widgetId: "…", baseUrl: "https://support.example.com" });
 *   const response = await client.sendMessage({ message: "Hello", sessionId: "unique_session_id" });
 *
 * Server-side credentials (`apiKey`, or `clientId` + `clientSecret`) must never be shipped to
 * browsers; in a browser use a widget token (`client.getWidgetToken(...)` then
 * `new ChatSupportAI({ baseUrl, widgetToken })`).
 */
import { ChatSupportAIError, NetworkError, errorFor } from "./errors.js";

export * from "./errors.js";

const DEFAULT_TIMEOUT_MS = 60_000;

function trimSlash(url) {
  return String(url || "").replace(/\/+$/, "");
}

/** The server when no baseUrl is given: the origin widget.js came from (recorded by it as
 * window.SupportAI.baseUrl, or read from its <script> tag, which the snippet loads `async`, so
 * it may not have run yet), SUPPORTAI_BASE_URL in Node, else the page's own origin. */
function defaultBaseUrl() {
  const widget = globalThis.SupportAI;
  if (widget && typeof widget.baseUrl === "string" && widget.baseUrl) return widget.baseUrl;
  if (typeof document !== "undefined" && document.querySelector) {
    const script = document.querySelector("script[data-client-id][src*='widget.js']");
    if (script) return new URL(script.getAttribute("src"), document.baseURI).origin;
  }
  const env = typeof process !== "undefined" && process.env ? process.env.SUPPORTAI_BASE_URL : "";
  if (env) return env;
  return typeof location !== "undefined" && location.origin !== "null" ? location.origin : "";
}

function query(params) {
  const search = new URLSearchParams();
  for (const [key, value] of Object.entries(params || {})) {
    if (value !== undefined && value !== null && value !== "") search.set(key, String(value));
  }
  const text = search.toString();
  return text ? `?${text}` : "";
}

function compact(object) {
  return Object.fromEntries(Object.entries(object).filter(([, value]) => value !== undefined));
}

export class ChatSupportAI {
  /**
   * @param {object} options
   * @param {string} [options.apiKey]        API key secret (`sk_…`), sent as `Authorization: Bearer`.
   * @param {string} [options.clientId]      API key client id (with clientSecret: `X-API-Key`/`X-API-Secret`;
   *                                         alone: enough to mint widget tokens).
   * @param {string} [options.clientSecret]
   * @param {string} [options.widgetToken]   a widget JWT from getWidgetToken() (browser use).
   * @param {string} [options.widgetId]      default widget for sendMessage/scrapeUrl/getWidgetConfig.
   * @param {string} [options.baseUrl]       your SupportAI server. Default: in a browser page that loaded
   *                                         widget.js, that script's origin; in Node, the SUPPORTAI_BASE_URL
   *                                         environment variable; else this page's origin.
   * @param {number} [options.timeout]       per-request timeout in ms (default 60 000).
   * @param {Function} [options.fetch]       a fetch implementation (default: globalThis.fetch).
   */
  constructor({ apiKey, clientId, clientSecret, widgetToken, widgetId, baseUrl, timeout, fetch: fetchImpl } = {}) {
    this.baseUrl = trimSlash(baseUrl || defaultBaseUrl());
    if (!this.baseUrl) {
      throw new TypeError(
        "ChatSupportAI: give your SupportAI server as new ChatSupportAI({ …, baseUrl: \"https://support.example.com\" }) " +
          "(or set SUPPORTAI_BASE_URL).",
      );
    }
    this.apiKey = apiKey;
    this.clientId = clientId;
    this.clientSecret = clientSecret;
    this.widgetToken = widgetToken;
    this.widgetId = widgetId;
    this.timeout = timeout || DEFAULT_TIMEOUT_MS;
    this._fetch = fetchImpl || globalThis.fetch.bind(globalThis);

    this.assistants = this._crud("assistants");
    this.widgets = this._crud("widgets");
    this.contexts = this._crud("contexts");
    this.sessions = {
      create: ({ assistantId, visitorId, locale, metadata } = {}) =>
        this.v1("POST", "sessions/", compact({ assistant_id: assistantId, visitor_id: visitorId, locale, metadata })),
      get: (id) => this.v1("GET", `sessions/${encodeURIComponent(id)}`),
      list: ({ visitorId, assistantId, page, pageSize } = {}) =>
        this.v1("GET", `sessions/${query({ visitor_id: visitorId, assistant_id: assistantId, page, page_size: pageSize })}`),
      sendMessage: (id, body, options) => this._postMessage("sessions", id, body, options),
      listMessages: (id, params) => this._listMessages("sessions", id, params),
      rateMessage: (id, messageId, rating) =>
        this.v1("POST", `sessions/${encodeURIComponent(id)}/messages/${encodeURIComponent(messageId)}/feedback`, {
          rating,
        }),
      handoff: (id, { reason, email } = {}) =>
        this.v1("POST", `sessions/${encodeURIComponent(id)}/handoff`, compact({ reason, email })),
      rate: (id, { score, comment } = {}) =>
        this.v1("POST", `sessions/${encodeURIComponent(id)}/csat`, compact({ score, comment })),
      ...this._desk("sessions"),
    };
    this.conversations = {
      create: ({ assistantId, customerId, userContextId, title, locale, metadata } = {}) =>
        this.v1(
          "POST",
          "conversations/",
          compact({
            assistant_id: assistantId,
            customer_id: customerId,
            user_context_id: userContextId,
            title,
            locale,
            metadata,
          })
        ),
      get: (id) => this.v1("GET", `conversations/${encodeURIComponent(id)}`),
      list: ({ customerId, page, pageSize } = {}) =>
        this.v1("GET", `conversations/${query({ customer_id: customerId, page, page_size: pageSize })}`),
      sendMessage: (id, body, options) => this._postMessage("conversations", id, body, options),
      listMessages: (id, params) => this._listMessages("conversations", id, params),
      rateMessage: (id, messageId, rating) =>
        this.v1(
          "POST",
          `conversations/${encodeURIComponent(id)}/messages/${encodeURIComponent(messageId)}/feedback`,
          { rating }
        ),
      handoff: (id, { reason, email } = {}) =>
        this.v1("POST", `conversations/${encodeURIComponent(id)}/handoff`, compact({ reason, email })),
      rate: (id, { score, comment } = {}) =>
        this.v1("POST", `conversations/${encodeURIComponent(id)}/csat`, compact({ score, comment })),
      ...this._desk("conversations"),
    };
    this.knowledge = {
      /** What the assistant would retrieve for `q` → [{ content, title, url, score, … }]. */
      search: ({ q, query: text, k, mode, assistantId } = {}) =>
        this.v1("GET", `knowledge/search${query({ q: q || text, k, mode, assistant_id: assistantId })}`),
      qa: {
        ...this._crud("knowledge/qa"),
        create: ({ question, answer, tags, source, assistantId } = {}) =>
          this.v1("POST", "knowledge/qa/", compact({ question, answer, tags, source, assistant_id: assistantId })),
      },
      urls: {
        ...this._crud("knowledge/urls"),
        create: ({ url, title, assistantId, ...options } = {}) =>
          this.v1("POST", "knowledge/urls/", compact({ url, title, assistant_id: assistantId, ...options })),
        retry: (id) => this.v1("POST", `knowledge/urls/${encodeURIComponent(id)}/retry`),
      },
      files: {
        ...this._crud("knowledge/files"),
        /** `file`: a Blob/File (browser, Node 18+); `filename` names it when it is a plain Blob. */
        create: ({ title, fileType, file, filename, assistantId } = {}) => {
          const form = new FormData();
          if (title !== undefined) form.append("title", title);
          if (fileType !== undefined) form.append("file_type", fileType);
          if (assistantId !== undefined) form.append("assistant_id", assistantId);
          form.append("file", file, filename || file.name || "upload");
          return this.v1("POST", "knowledge/files/", form);
        },
        retry: (id) => this.v1("POST", `knowledge/files/${encodeURIComponent(id)}/retry`),
      },
    };
  }

  // ------------------------------------------------------------------ seed 000 (bearer API key)

  /** POST /api/widget/chat → `{ id: "resp_…", message, timestamp }`. */
  sendMessage({ message, sessionId, context, widgetId } = {}) {
    return this._request("POST", "/api/widget/chat", {
      body: compact({ message, widgetId: widgetId || this.widgetId, sessionId, context }),
    });
  }

  /** POST /api/widget/scrape → `{ url, title, content, scrapedAt }`; with a widget, also learns the page. */
  scrapeUrl({ url, widgetId } = {}) {
    return this._request("POST", "/api/widget/scrape", {
      body: compact({ url, widgetId: widgetId === undefined ? this.widgetId : widgetId }),
    });
  }

  /** GET /api/widget/config?widgetId=… → the widget's public configuration. */
  getWidgetConfig({ widgetId } = {}) {
    return this._request("GET", `/api/widget/config${query({ widgetId: widgetId || this.widgetId })}`);
  }

  // ------------------------------------------------------------------ /api/v1

  /**
   * POST /api/v1/auth/widget-token (no secret needed) → `{ token, expires_in, token_type }`.
   * `visitorToken`: the visitor's latest token (same client id and config, expired less than a
   * week ago), to keep their identity (and sessions); each token renews once.
   * A signed-in customer (verified visitors): `userId` + `userHash` (the hex HMAC-SHA256 of the
   * user id under the identity secret, computed by your server), or `userToken` (an HS256 JWT
   * your server signed with it); a bad proof rejects with AuthenticationError (401).
   */
  getWidgetToken({ clientId, configId, visitorToken, userId, userHash, userToken } = {}) {
    return this._request("POST", "/api/v1/auth/widget-token", {
      auth: false,
      body: compact({
        client_id: clientId || this.clientId,
        config_id: configId,
        visitor_token: visitorToken,
        user_id: userId,
        user_hash: userHash,
        user_token: userToken,
      }),
    });
  }

  /** A client that acts as one widget visitor (for browser-side use). */
  withWidgetToken(token) {
    return new ChatSupportAI({ baseUrl: this.baseUrl, widgetToken: token, widgetId: this.widgetId, fetch: this._fetch, timeout: this.timeout });
  }

  /** Any /api/v1 call; resolves to the envelope's `data`. */
  async v1(method, path, body) {
    const envelope = await this._request(method, `/api/v1/${path}`, { body });
    return envelope && envelope.status === "success" ? envelope.data : envelope;
  }

  _crud(resource) {
    return {
      list: (params = {}) =>
        this.v1("GET", `${resource}/${query({ page: params.page, page_size: params.pageSize, ...params.filters })}`),
      create: (body) => this.v1("POST", `${resource}/`, body),
      get: (id) => this.v1("GET", `${resource}/${encodeURIComponent(id)}`),
      update: (id, body) => this.v1("PATCH", `${resource}/${encodeURIComponent(id)}`, body),
      delete: (id) => this.v1("DELETE", `${resource}/${encodeURIComponent(id)}`),
    };
  }

  /**
   * The support desk from your own backend (API keys only; docs/support-desk.md): `reply(id,
   * { content })` posts a reply as your team (→ the operator message; the conversation becomes
   * `human`), `resolve(id)`, `handBack(id)` (to the assistant) and `reopen(id)` (to the waiting
   * queue) → the session or conversation.
   */
  _desk(kind) {
    const path = (id, action) => `${kind}/${encodeURIComponent(id)}/${action}`;
    return {
      reply: (id, { content } = {}) => this.v1("POST", path(id, "reply"), compact({ content })),
      resolve: (id) => this.v1("POST", path(id, "resolve")),
      handBack: (id) => this.v1("POST", path(id, "hand-back")),
      reopen: (id) => this.v1("POST", path(id, "reopen")),
    };
  }

  _listMessages(kind, id, { after, page, pageSize } = {}) {
    return this.v1("GET", `${kind}/${encodeURIComponent(id)}/messages${query({ after, page, page_size: pageSize })}`);
  }

  /**
   * Posts a message and resolves to the stored assistant message (`{ id, role, content,
   * sources, … }`). With `{ stream: true, onToken }` the answer is streamed (SSE) and
   * `onToken(text)` is called for each piece as it arrives. `idempotencyKey` makes retries safe.
   */
  async _postMessage(kind, id, { content, metadata } = {}, { stream = false, onToken, idempotencyKey, signal } = {}) {
    const path = `/api/v1/${kind}/${encodeURIComponent(id)}/messages`;
    const headers = {};
    if (idempotencyKey) headers["Idempotency-Key"] = idempotencyKey;
    if (!stream) {
      const envelope = await this._request("POST", path, { body: compact({ content, metadata }), headers, signal });
      return envelope.data;
    }
    const response = await this._send("POST", path, {
      body: compact({ content, metadata }),
      headers: { ...headers, Accept: "text/event-stream" },
      signal,
      timeout: null,
    });
    if (!response.ok) throw await this._error(response);
    if (!(response.headers.get("Content-Type") || "").includes("text/event-stream")) {
      const envelope = await response.json();
      return envelope.data;
    }
    let final = null;
    for await (const { event, data } of readEvents(response.body)) {
      if (event === "token" && onToken) onToken(data && typeof data === "object" ? data.content : data);
      else if (event === "done") final = data;
      else if (event === "error") throw errorFor({ status_code: data.status_code || 502, detail: data.detail, data: data.data });
    }
    if (!final) throw new ChatSupportAIError({ status_code: 502, detail: "The answer stream ended early." });
    return final;
  }

  // ------------------------------------------------------------------ transport

  _headers(auth) {
    if (!auth) return {};
    if (this.widgetToken) return { Authorization: `Bearer ${this.widgetToken}` };
    if (this.clientId && this.clientSecret) return { "X-API-Key": this.clientId, "X-API-Secret": this.clientSecret };
    if (this.apiKey) return { Authorization: `Bearer ${this.apiKey}` };
    return {};
  }

  async _send(method, path, { body, headers = {}, auth = true, signal, timeout } = {}) {
    const all = { Accept: "application/json", ...this._headers(auth), ...headers };
    let payload;
    if (body instanceof FormData) payload = body;
    else if (body !== undefined) {
      all["Content-Type"] = "application/json";
      payload = JSON.stringify(body);
    }
    const limit = timeout === undefined ? this.timeout : timeout;
    const controller = new AbortController();
    const timer = limit ? setTimeout(() => controller.abort(), limit) : null;
    if (signal) signal.addEventListener("abort", () => controller.abort(), { once: true });
    try {
      return await this._fetch(this.baseUrl + path, { method, headers: all, body: payload, signal: controller.signal });
    } catch (error) {
      throw new NetworkError({ status_code: 0, detail: `Network error: ${error && error.message ? error.message : error}` });
    } finally {
      if (timer) clearTimeout(timer);
    }
  }

  async _error(response) {
    let body = null;
    try {
      body = await response.json();
    } catch {
      body = null;
    }
    return errorFor({
      status_code: (body && body.status_code) || response.status,
      detail: (body && body.detail) || `HTTP ${response.status}`,
      data: body ? body.data : null,
      headers: response.headers,
    });
  }

  async _request(method, path, options = {}) {
    const response = await this._send(method, path, options);
    if (!response.ok) throw await this._error(response);
    if (response.status === 204) return null;
    return response.json();
  }
}

/** Parses a `text/event-stream` body into `{ event, data }` objects (data JSON-decoded when possible). */
export async function* readEvents(body) {
  const decoder = new TextDecoder();
  let buffer = "";
  const parse = (block) => {
    let event = "message";
    const lines = [];
    for (const line of block.split("\n")) {
      if (line.startsWith("event:")) event = line.slice(6).trim();
      else if (line.startsWith("data:")) lines.push(line.slice(5).replace(/^ /, ""));
    }
    if (!lines.length) return null;
    const raw = lines.join("\n");
    try {
      return { event, data: JSON.parse(raw) };
    } catch {
      return { event, data: raw };
    }
  };
  const reader = body.getReader(); // not `for await`: not every browser iterates streams
  for (;;) {
    const { value: chunk, done } = await reader.read();
    if (done) break;
    buffer += decoder.decode(chunk, { stream: true }).replace(/\r\n?/g, "\n");
    let index;
    while ((index = buffer.indexOf("\n\n")) !== -1) {
      const parsed = parse(buffer.slice(0, index));
      buffer = buffer.slice(index + 2);
      if (parsed) yield parsed;
    }
  }
  if (buffer.trim()) {
    const parsed = parse(buffer.trim());
    if (parsed) yield parsed;
  }
}

export default ChatSupportAI;

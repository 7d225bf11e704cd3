// Runs against a real SupportAI server. The pytest test widget/tests/test_sdk.py starts one,
// creates an organization, key, assistant, Q&A and widget, then runs `node --test` with:
//   SUPPORTAI_BASE_URL, SUPPORTAI_API_KEY (bearer secret), SUPPORTAI_CLIENT_ID,
//   SUPPORTAI_CLIENT_SECRET, SUPPORTAI_WIDGET_ID, SUPPORTAI_ASSISTANT_ID,
//   SUPPORTAI_OTHER_WIDGET_ID (a widget of another organization), SUPPORTAI_IDENTITY_SECRET
//   (the organization's identity secret, which only a customer's server would hold).
import assert from "node:assert/strict";
import { test } from "node:test";

import {
  AuthenticationError,
  ChatSupportAI,
  ChatSupportAIError,
  ConflictError,
  NetworkError,
  NotFoundError,
  PermissionDeniedError,
  ValidationError,
} from "../src/index.js";

const env = process.env;
const baseUrl = env.SUPPORTAI_BASE_URL;
const required = ["SUPPORTAI_BASE_URL", "SUPPORTAI_API_KEY", "SUPPORTAI_CLIENT_ID", "SUPPORTAI_WIDGET_ID"];
const missing = required.filter((name) => !env[name]);
if (missing.length) throw new Error(`Set ${missing.join(", ")} (see widget/tests/test_sdk.py)`);

const client = new ChatSupportAI({ apiKey: env.SUPPORTAI_API_KEY, widgetId: env.SUPPORTAI_WIDGET_ID, baseUrl });
const pair = new ChatSupportAI({ clientId: env.SUPPORTAI_CLIENT_ID, clientSecret: env.SUPPORTAI_CLIENT_SECRET, baseUrl });

async function rejects(promise, Type, status) {
  await assert.rejects(promise, (error) => {
    assert.ok(error instanceof Type, `${error.name} is not ${Type.name}: ${error.detail}`);
    assert.ok(error instanceof ChatSupportAIError);
    assert.equal(error.status_code, status);
    assert.equal(typeof error.detail, "string");
    assert.ok(error.detail.length > 0);
    return true;
  });
}

test("seed 000's example as written: no baseUrl in the code, SUPPORTAI_BASE_URL gives it", async () => {
  assert.equal(process.env.SUPPORTAI_BASE_URL, baseUrl);
  const seed = new ChatSupportAI({ apiKey: env.SUPPORTAI_API_KEY, widgetId: env.SUPPORTAI_WIDGET_ID });
  assert.equal(seed.baseUrl, baseUrl.replace(/\/+$/, ""));
  const response = await seed.sendMessage({ message: "What are your business hours?", sessionId: "seed-as-written" });
  assert.match(response.message, /9 ?am/i);

  delete process.env.SUPPORTAI_BASE_URL; // nowhere to send anything: say where to put it
  try {
    assert.throws(() => new ChatSupportAI({ apiKey: "sk_x" }), /baseUrl: "https:\/\/support\.example\.com"/);
  } finally {
    process.env.SUPPORTAI_BASE_URL = baseUrl;
  }
});

test("seed 000: sendMessage, exactly as the seed shows", async () => {
  const response = await client.sendMessage({
    message: "What are your business hours?",
    sessionId: "unique_session_id",
  });
  assert.match(response.id, /^resp_\d+$/);
  assert.match(response.message, /9 ?am/i);
  assert.match(response.timestamp, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
});

test("seed 000: sendMessage with context rules", async () => {
  const response = await client.sendMessage({
    message: "What is your refund policy?",
    sessionId: "sdk-context",
    context: {
      rules: {
        companyName: "Acme Inc.",
        policies: [{ title: "Refunds", content: "Refunds are possible within 14 days of purchase." }],
        tone: "friendly",
      },
    },
  });
  assert.match(response.message, /14 days/);
});

test("seed 000: getWidgetConfig", async () => {
  const config = await client.getWidgetConfig();
  assert.equal(config.widgetId, env.SUPPORTAI_WIDGET_ID);
  assert.equal(config.title, "SDK widget");
  assert.equal(config.assistantId, env.SUPPORTAI_ASSISTANT_ID);
});

test("seed 000: errors are typed, with status_code and detail", async () => {
  await rejects(client.sendMessage({ sessionId: "x" }), ValidationError, 400);
  await rejects(client.getWidgetConfig({ widgetId: env.SUPPORTAI_OTHER_WIDGET_ID }), NotFoundError, 404);
  const stranger = new ChatSupportAI({ apiKey: "sk_000000000000_wrong", widgetId: env.SUPPORTAI_WIDGET_ID, baseUrl });
  await rejects(stranger.getWidgetConfig(), AuthenticationError, 401);
  await rejects(client.scrapeUrl({ url: "http://169.254.169.254/latest/meta-data/" }), ValidationError, 400);
});

test("network failures are NetworkError with status_code 0", async () => {
  const nowhere = new ChatSupportAI({ apiKey: "sk_x_y", baseUrl: "http://127.0.0.1:9" });
  await rejects(nowhere.getWidgetConfig({ widgetId: "x" }), NetworkError, 0);
});

test("v1: widget token, then a visitor session with streamed and plain answers", async () => {
  const minted = await client.getWidgetToken({ clientId: env.SUPPORTAI_CLIENT_ID, configId: env.SUPPORTAI_WIDGET_ID });
  assert.deepEqual(Object.keys(minted).sort(), ["expires_in", "token", "token_type"]);
  assert.equal(minted.token_type, "Bearer");
  assert.equal(minted.expires_in, 3600);
  const visitor = client.withWidgetToken(minted.token);

  const session = await visitor.sessions.create({ assistantId: env.SUPPORTAI_ASSISTANT_ID, metadata: { source: "sdk" } });
  assert.ok(session.id);

  const pieces = [];
  const streamed = await visitor.sessions.sendMessage(
    session.id,
    { content: "When are you open?" },
    { stream: true, onToken: (text) => pieces.push(text), idempotencyKey: "sdk-q1" }
  );
  assert.ok(pieces.length >= 1);
  assert.equal(pieces.join(""), streamed.content);
  assert.equal(streamed.role, "assistant");
  assert.ok(streamed.sources.length >= 1);

  const plain = await visitor.sessions.sendMessage(session.id, { content: "When are you open?" });
  assert.equal(plain.role, "assistant");

  const history = await visitor.sessions.listMessages(session.id);
  assert.equal(history.count, 4);
  const newer = await visitor.sessions.listMessages(session.id, { after: streamed.id });
  assert.equal(newer.results.length, 2);

  const rated = await visitor.sessions.rateMessage(session.id, streamed.id, "up");
  assert.equal(rated.feedback, "up");

  // The visitor's token cannot manage anything, nor see another visitor's session.
  await rejects(visitor.assistants.list(), PermissionDeniedError, 403);
  await rejects(visitor.widgets.list(), PermissionDeniedError, 403);
  const other = client.withWidgetToken((await client.getWidgetToken({ clientId: env.SUPPORTAI_CLIENT_ID })).token);
  await rejects(other.sessions.listMessages(session.id), NotFoundError, 404);
});

test("v1: a verified customer's token (user hash computed as docs/widget.md shows), handoff and rating", async () => {
  const { createHmac } = await import("node:crypto");
  const user = { id: "cust-sdk-7" };
  // Your server computes this (docs/widget.md, "Verified visitors", Node):
  const userHash = createHmac("sha256", env.SUPPORTAI_IDENTITY_SECRET).update(user.id).digest("hex");
  const minted = await client.getWidgetToken({ clientId: env.SUPPORTAI_CLIENT_ID, userId: user.id, userHash });
  const customer = client.withWidgetToken(minted.token);
  const session = await customer.sessions.create({ assistantId: env.SUPPORTAI_ASSISTANT_ID });
  assert.equal(session.customer_id, user.id);
  assert.equal(session.visitor_verified, true);
  const own = await customer.sessions.list();
  assert.deepEqual(own.results.map((item) => item.id), [session.id]);
  await rejects(
    client.getWidgetToken({ clientId: env.SUPPORTAI_CLIENT_ID, userId: user.id, userHash: "0".repeat(64) }),
    AuthenticationError,
    401
  );

  const waiting = await customer.sessions.handoff(session.id, { reason: "sdk", email: "cust@example.com" });
  assert.equal(waiting.handoff_status, "waiting");
  await rejects(customer.sessions.rate(session.id, { score: 5 }), ConflictError, 409); // not resolved yet
  await rejects(customer.sessions.handoff(session.id, { email: "no\nt@x.y" }), ValidationError, 400);
  const stranger = client.withWidgetToken((await client.getWidgetToken({ clientId: env.SUPPORTAI_CLIENT_ID })).token);
  await rejects(stranger.sessions.handoff(session.id), NotFoundError, 404);
});

test("v1: the support desk from your own helpdesk: reply, resolve, reopen, hand back", async () => {
  const minted = await client.getWidgetToken({ clientId: env.SUPPORTAI_CLIENT_ID, configId: env.SUPPORTAI_WIDGET_ID });
  const visitor = client.withWidgetToken(minted.token);
  const session = await visitor.sessions.create({ assistantId: env.SUPPORTAI_ASSISTANT_ID });
  await visitor.sessions.handoff(session.id, { reason: "billing" });

  const reply = await client.sessions.reply(session.id, { content: "Hi, Ana from billing here." });
  assert.equal(reply.role, "operator");
  assert.equal(reply.content, "Hi, Ana from billing here.");
  assert.equal((await client.sessions.get(session.id)).handoff_status, "human");
  const seen = await visitor.sessions.listMessages(session.id);
  assert.deepEqual(
    seen.results.filter((message) => message.role === "operator").map((message) => message.content),
    ["Hi, Ana from billing here."]
  );
  assert.equal((await client.sessions.resolve(session.id)).handoff_status, "resolved");
  const rated = await visitor.sessions.rate(session.id, { score: 5 });
  assert.equal(rated.score, 5);
  assert.equal((await client.sessions.reopen(session.id)).handoff_status, "waiting");
  const back = await client.sessions.handBack(session.id);
  assert.equal(back.id, session.id);
  assert.equal(back.handoff_status, "bot");

  // The visitor's own token never acts as the team; bad input and unknown ids are typed errors.
  await rejects(visitor.sessions.reply(session.id, { content: "I am the team" }), PermissionDeniedError, 403);
  await rejects(visitor.sessions.resolve(session.id), PermissionDeniedError, 403);
  await rejects(client.sessions.reply(session.id, { content: "   " }), ValidationError, 400);
  await rejects(client.sessions.reply(session.id), ValidationError, 400);
  const nobody = "00000000-0000-0000-0000-000000000000";
  await rejects(client.sessions.handBack(nobody), NotFoundError, 404);
  await rejects(client.conversations.reopen(session.id), NotFoundError, 404); // a session is not a conversation

  const conversation = await pair.conversations.create({ assistantId: env.SUPPORTAI_ASSISTANT_ID, customerId: "desk-1" });
  const answer = await pair.conversations.reply(conversation.id, { content: "We are on it." });
  assert.equal(answer.role, "operator");
  assert.equal((await pair.conversations.resolve(conversation.id)).handoff_status, "resolved");
  assert.equal((await pair.conversations.reopen(conversation.id)).handoff_status, "waiting");
  assert.equal((await pair.conversations.handBack(conversation.id)).handoff_status, "bot");
});

test("v1 with client id and secret: assistants, contexts, conversations", async () => {
  const assistants = await pair.assistants.list();
  assert.ok(assistants.results.some((assistant) => assistant.id === env.SUPPORTAI_ASSISTANT_ID));

  const context = await pair.contexts.create({ user_reference: `user-${Date.now()}`, traits: { name: "Alice" } });
  assert.equal(context.traits.name, "Alice");
  const updated = await pair.contexts.update(context.id, { traits: { name: "Alice", tier: "premium" } });
  assert.equal(updated.traits.tier, "premium");

  const conversation = await pair.conversations.create({
    assistantId: env.SUPPORTAI_ASSISTANT_ID,
    customerId: "user-456",
    title: "Order Support",
    locale: "en",
  });
  const answer = await pair.conversations.sendMessage(conversation.id, { content: "What are your business hours?" });
  assert.equal(answer.role, "assistant");
  const listed = await pair.conversations.list({ customerId: "user-456" });
  assert.ok(listed.results.some((item) => item.id === conversation.id));

  assert.equal(await pair.contexts.delete(context.id), null);
  await rejects(pair.contexts.get(context.id), NotFoundError, 404);
  await rejects(pair.assistants.create({}), ValidationError, 400);
});

test("v1: widgets CRUD", async () => {
  const widget = await pair.widgets.create({ assistant_id: env.SUPPORTAI_ASSISTANT_ID, title: "Second", allowed_domains: ["https://shop.example.com"] });
  assert.deepEqual(widget.allowed_domains, ["https://shop.example.com"]);
  const patched = await pair.widgets.update(widget.id, { primary_color: "#111111" });
  assert.equal(patched.primary_color, "#111111");
  await rejects(pair.widgets.update(widget.id, { primary_color: "blue" }), ValidationError, 400);
  await pair.widgets.delete(widget.id);
  await rejects(pair.widgets.get(widget.id), NotFoundError, 404);
  await rejects(pair.widgets.get(env.SUPPORTAI_OTHER_WIDGET_ID), NotFoundError, 404);
});

test("v1: knowledge (Q&A, files, URLs, search)", async () => {
  const qa = await pair.knowledge.qa.create({
    question: "Do you offer gift cards?",
    answer: "Yes, gift cards from $10 to $500, valid for two years.",
    tags: ["gift"],
    assistantId: env.SUPPORTAI_ASSISTANT_ID,
  });
  assert.equal(qa.question, "Do you offer gift cards?");
  assert.deepEqual(qa.tags, ["gift"]);
  assert.equal((await pair.knowledge.qa.get(qa.id)).answer, qa.answer);
  assert.ok((await pair.knowledge.qa.list()).results.some((item) => item.id === qa.id));
  const found = await pair.knowledge.search({ q: "gift card", assistantId: env.SUPPORTAI_ASSISTANT_ID });
  assert.ok(JSON.stringify(found).includes("gift cards from $10"));

  const file = await pair.knowledge.files.create({
    title: "Shipping notes",
    fileType: "text",
    file: new Blob(["We ship worldwide within 5 business days."], { type: "text/plain" }),
    filename: "shipping.txt",
  });
  assert.equal(file.status, "pending");
  assert.equal(file.title, "Shipping notes");

  await rejects(pair.knowledge.urls.create({ url: "http://169.254.169.254/latest/meta-data/" }), ValidationError, 400);
  await rejects(pair.knowledge.qa.create({ question: "", answer: "x" }), ValidationError, 400);

  assert.equal(await pair.knowledge.qa.delete(qa.id), null);
  await rejects(pair.knowledge.qa.get(qa.id), NotFoundError, 404);
});

test("seed 000: scrapeUrl fetches a page (a loopback site on the scrape allow-list)", async (t) => {
  if (!env.SUPPORTAI_SITE_URL) return t.skip("no SUPPORTAI_SITE_URL");
  const page = await client.scrapeUrl({ url: `${env.SUPPORTAI_SITE_URL}/` });
  assert.equal(page.title, "Acme shop");
  assert.match(page.content, /Tents, backpacks and boots/);
  assert.match(page.scrapedAt, /Z$/);
});

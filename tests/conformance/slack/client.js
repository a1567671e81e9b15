// Slack's own Socket Mode and Web API clients (@slack/socket-mode, which
// brings @slack/web-api) pointed at pinch's fake Slack, to prove the fake
// speaks the real protocol. Run by tests/slack_conformance.rs:
//   NODE_PATH=<dir>/node_modules node client.js http://127.0.0.1:<port>/api/
// Prints one "EVENT <name> <json>" line per observation; "quit" on stdin
// disconnects and exits 0. Any error exits non-zero.
'use strict';
const { SocketModeClient, LogLevel } = require('@slack/socket-mode');
const { WebClient } = require('@slack/web-api');

const api = process.argv[2];
const appToken = process.argv[3] || 'xapp-1-A0TEST-1-fake';
const botToken = process.argv[4] || 'xoxb-1-fake';
const say = (name, data) => console.log(`EVENT ${name} ${JSON.stringify(data || {})}`);
const fail = (why) => { console.log(`EVENT error ${JSON.stringify(String(why))}`); process.exit(2); };

const socket = new SocketModeClient({
  appToken,
  clientOptions: { slackApiUrl: api },
  logLevel: LogLevel.ERROR,
});
let connections = 0;
socket.on('connected', () => { connections += 1; say('connected', { n: connections }); });
for (const type of ['message', 'app_mention']) {
  socket.on(type, async ({ event, ack, envelope_id, retry_num }) => {
    await ack();
    say(type, { envelope_id, retry_num, channel: event.channel, ts: event.ts, text: event.text });
  });
}

(async () => {
  await socket.start();
  const web = new WebClient(botToken, { slackApiUrl: api, retryConfig: { retries: 2 } });
  const who = await web.auth.test();
  say('auth', { user_id: who.user_id, bot_id: who.bot_id });
  // The fake answers the first postMessage with 429 + Retry-After; the
  // official client waits and retries by itself.
  const started = Date.now();
  const posted = await web.chat.postMessage({ channel: 'C0GEN', text: 'from node', thread_ts: '1790000000.000001' });
  say('posted', { ts: posted.ts, waited_ms: Date.now() - started });
  // What pinch relies on for exactly-once sends and streaming: message
  // metadata on a post, chat.update, and the metadata read back through
  // conversations.history with include_all_metadata.
  const tagged = await web.chat.postMessage({
    channel: 'C0GEN', text: 'draft from node',
    metadata: { event_type: 'pinch_send', event_payload: { id: 'node.1' } },
  });
  const updated = await web.chat.update({ channel: 'C0GEN', ts: tagged.ts, text: 'edited by node' });
  const history = await web.conversations.history({
    channel: 'C0GEN', oldest: String(Math.floor(Date.now() / 1000) - 300),
    inclusive: true, limit: 100, include_all_metadata: true,
  });
  const found = history.messages.find((m) => m.metadata && m.metadata.event_type === 'pinch_send'
    && m.metadata.event_payload && m.metadata.event_payload.id === 'node.1');
  say('history', {
    posted_ts: tagged.ts, updated_ts: updated.ts, found_ts: found && found.ts,
    text: found && found.text, count: history.messages.length,
  });
})().catch(fail);

process.stdin.on('data', (d) => {
  if (String(d).includes('quit')) {
    socket.disconnect().then(() => process.exit(0), fail);
  }
});
setTimeout(() => fail('timed out after 60 s'), 60000).unref();

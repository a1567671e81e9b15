// Discord's own client libraries (@discordjs/ws, @discordjs/rest) against
// pinch's fake Discord: the runner (tests/discord_conformance.rs) starts the
// fake and this script, then drives the fake while this script reports what
// the libraries saw, one line per event on stdout.
//
// Usage: node client.cjs API_ROOT TOKEN
'use strict';
const { REST } = require('@discordjs/rest');
const { WebSocketManager, WebSocketShardEvents } = require('@discordjs/ws');

const [apiRoot, token] = process.argv.slice(2);
if (!apiRoot || !token) {
  console.error('usage: node client.cjs API_ROOT TOKEN');
  process.exit(2);
}
const say = (...parts) => console.log(parts.join(' '));
const rest = new REST({ version: '10', api: apiRoot, retries: 2 }).setToken(token);
const manager = new WebSocketManager({
  token,
  intents: 37377, // GUILDS | GUILD_MESSAGES | DIRECT_MESSAGES | MESSAGE_CONTENT
  rest,
  compression: null,
});

let messages = 0;
manager.on(WebSocketShardEvents.Dispatch, async (payload) => {
  // @discordjs/ws 2.x passes the payload; 1.x wrapped it in { data }.
  const event = payload && payload.data && payload.data.t ? payload.data : payload;
  if (event.t === 'READY') say('READY', event.d.session_id, event.d.user.id);
  if (event.t === 'RESUMED') say('RESUMED');
  if (event.t !== 'MESSAGE_CREATE') return;
  messages += 1;
  say('MESSAGE', event.s, event.d.channel_id, JSON.stringify(event.d.content));
  try {
    const sent = await rest.post(`/channels/${event.d.channel_id}/messages`, {
      body: {
        content: `echo: ${event.d.content}`,
        allowed_mentions: { parse: [] },
        message_reference: { message_id: event.d.id },
      },
    });
    say('POSTED', sent.id);
    // Streaming by edit: the message is edited in place.
    const edited = await rest.patch(`/channels/${event.d.channel_id}/messages/${sent.id}`, {
      body: { content: `edited: ${event.d.content}`, allowed_mentions: { parse: [] } },
    });
    say('EDITED', edited.id, JSON.stringify(edited.content));
  } catch (e) {
    say('POST-FAILED', JSON.stringify(String(e)));
  }
  if (messages >= 2) {
    await manager.destroy();
    say('DONE');
    process.exit(0);
  }
});
manager.on(WebSocketShardEvents.Error, (e) => say('ERROR', JSON.stringify(String(e && e.error ? e.error : e))));

manager.connect().then(() => say('CONNECTED'), (e) => {
  say('CONNECT-FAILED', JSON.stringify(String(e)));
  process.exit(1);
});
setTimeout(() => { say('TIMEOUT'); process.exit(1); }, 60_000).unref();

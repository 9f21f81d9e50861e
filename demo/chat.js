// Chat demo: the CometD JavaScript client (served from node_modules/cometd
// by util/demo, as ES modules) against ngx_bayeux_module at /cometd.
//
// Channels:
//   /chat/room      { user, id, text }        what people say (id: the
//                                             sender's Bayeux clientId)
//   /presence       { user, present }         published by nginx
//                   (bayeux_presence_channel) when a user's first session
//                   begins (true) and when the last one ends (false:
//                   disconnected, or expired: a tab closed without a
//                   disconnect)
//   /chat/private   { from, text }            a private message, sent by
//                   the demo's application to every session of one user
//                   through nginx's publish API: a listener gets it, no
//                   subscription needed
// Remote calls, answered by the demo's application (bayeux_service_request):
//   remoteCall('members', {})           -> { members: [names] }: who is in
//                   the room, asked at each handshake; /presence then
//                   keeps the list live
//   remoteCall('private', { to, text }) -> { sent: true }, or the error
//                   "404::not_found" when "to" is not in the room; the
//                   application takes "from" from the session's user, not
//                   from the page
//
// The name goes in the handshake's ext, { login: { name } }: the demo's
// application (demo/app.js, asked by nginx at every handshake) lets in a
// name of 1 to 32 letters, digits, spaces, "_" or "-", makes it the
// session's user and grants the session /chat/room and /presence; it
// refuses anything else ("403::handshake_denied"), and the page asks for
// another name.
//
// ?transport=websocket, long-polling, callback-polling, or a list, in the
// order to try them, chooses the transports the client may use; the
// default, websocket,long-polling, is the CometD client's own: websocket,
// and long-polling when a websocket cannot be opened.
//
// ?reload=1 keeps the session across a reload of the page (CometD's
// ReloadExtension): at pagehide the page saves its session instead of
// disconnecting, and the reloaded page goes on with it, without a new
// handshake, and gets what was said meanwhile.  The price: a tab closed
// for good leaves the room only when its session expires.
// ?url=http://other.host:8081/cometd talks to a Bayeux endpoint of another
// origin (which must allow this page's origin: bayeux_allow_origin, and
// bayeux_allow_credentials on, as the CometD client sends credentials);
// by default the endpoint is /cometd next to the page.

import {
    CallbackPollingTransport, CometD, LongPollingTransport, ReloadExtension,
    WebSocketTransport,
} from './lib/cometd/cometd.js';

const ROOM = '/chat/room';
const PRESENCE = '/presence';
const PRIVATE = '/chat/private';
const CALL_TIMEOUT = 10000;
const SAVED_NAME = 'chat.name';     // sessionStorage, across a reload

const params = new URLSearchParams(window.location.search);
const wanted = (params.get('transport') || 'websocket,long-polling').split(',');
const endpoint = new URL(params.get('url') || 'cometd', window.location.href);
const keepOnReload = params.get('reload') === '1';

const $ = (id) => document.getElementById(id);
const ui = {
    status: $('status'),
    join: $('join'),
    joinForm: $('join-form'),
    joinError: $('join-error'),
    name: $('name'),
    room: $('room'),
    members: $('members'),
    memberCount: $('member-count'),
    leave: $('leave'),
    messages: $('messages'),
    sendForm: $('send-form'),
    text: $('text'),
    privateTo: $('private-to'),
    privateName: $('private-name'),
    privateCancel: $('private-cancel'),
};

let cometd = null;
let me = null;                  // { name, id }
let members = new Set();        // names
let pending = null;             // /presence messages before the list came
let privateTo = null;           // the member a message goes to, or null

function setStatus(state, text) {
    ui.status.dataset.state = state;
    ui.status.textContent = text;
}

function newCometD() {
    const c = new CometD();
    c.unregisterTransports();
    for (const type of wanted) {
        if (type === 'long-polling') {
            c.registerTransport(type, new LongPollingTransport());
        } else if (type === 'websocket') {
            c.registerTransport(type, new WebSocketTransport());
        } else if (type === 'callback-polling') {
            c.registerTransport(type, new CallbackPollingTransport());
        }
    }
    if (keepOnReload) {
        c.registerExtension('reload', new ReloadExtension());
    }
    c.configure({
        url: endpoint.href,
        logLevel: 'warn',
    });
    c.addListener('/meta/handshake', onHandshake);
    c.addListener('/meta/connect', onConnect);
    // messages to this user alone: the application publishes them to
    // every session of the user, whatever it subscribed to
    c.addListener(PRIVATE, onPrivate);
    return c;
}

// ---------------------------------------------------------------- the room

function time(date = new Date()) {
    return date.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
}

function scrollDown() {
    ui.messages.scrollTop = ui.messages.scrollHeight;
}

function notice(text) {
    const li = document.createElement('li');
    li.className = 'notice';
    const t = document.createElement('time');
    t.textContent = time();
    li.append(t, ' ', text);
    ui.messages.append(li);
    scrollDown();
}

// a message in the log: { user, text, mine, to (private, sent),
// private (received) }
function say(m) {
    const li = document.createElement('li');
    li.className = 'message' + (m.mine ? ' mine' : '')
        + (m.to || m.private ? ' private' : '');
    const who = document.createElement('span');
    who.className = 'who';
    who.textContent = m.user;
    const t = document.createElement('time');
    t.textContent = time();
    li.append(who, ' ');
    if (m.to || m.private) {
        const tag = document.createElement('span');
        tag.className = 'tag';
        tag.textContent = m.to ? `private to ${m.to}` : 'private';
        li.append(tag, ' ');
    }
    const text = document.createElement('p');
    text.className = 'text';
    text.textContent = m.text;
    li.append(t, text);
    ui.messages.append(li);
    scrollDown();
}

function renderMembers() {
    const sorted = [...members].sort((a, b) => a.localeCompare(b));
    ui.members.replaceChildren(...sorted.map((name) => {
        const li = document.createElement('li');
        li.dataset.user = name;
        if (me && name === me.name) {
            li.className = 'me';
            const you = document.createElement('span');
            you.className = 'you';
            you.textContent = ' (you)';
            li.append(name, you);
        } else {
            // pick someone to talk to privately
            const pick = document.createElement('button');
            pick.type = 'button';
            pick.className = 'member';
            pick.textContent = name;
            pick.title = `Send ${name} a private message`;
            pick.setAttribute('aria-pressed', String(name === privateTo));
            pick.addEventListener('click', () =>
                choosePrivate(name === privateTo ? null : name, true));
            li.append(pick);
        }
        return li;
    }));
    ui.memberCount.textContent = `(${members.size})`;
}

// the member the next messages go to privately, or null: the room
function choosePrivate(name, focus = false) {
    privateTo = name;
    ui.privateTo.hidden = name === null;
    ui.privateName.textContent = name || '';
    ui.text.placeholder = name === null ? 'Write a message'
        : `Write to ${name} only`;
    renderMembers();
    if (focus) {
        ui.text.focus();
    }
}

function onChat(message) {
    const data = message.data;
    if (data && typeof data.text === 'string' && typeof data.user === 'string') {
        say({ user: data.user, text: data.text,
              mine: me && data.id === me.id });
    }
}

function onPrivate(message) {
    const data = message.data;
    if (me && data && typeof data.from === 'string'
        && typeof data.text === 'string')
    {
        say({ user: data.from, text: data.text, private: true });
    }
}

// who came, who went: applied as they come, and again once the list of
// members arrives (they may be newer than it)
function present(user, here) {
    if (here) {
        members.add(user);
    } else if (!me || user !== me.name) {
        members.delete(user);
        if (user === privateTo) {
            choosePrivate(null);
        }
    }
}

function onPresence(message) {
    const p = message.data;
    if (!me || !p || typeof p.user !== 'string'
        || typeof p.present !== 'boolean')
    {
        return;
    }
    present(p.user, p.present);
    if (pending) {
        pending.push(p);
    }
    if (p.user !== me.name) {
        notice(p.present ? `${p.user} joined.` : `${p.user} left.`);
    }
    renderMembers();
}

function onMembers(reply) {
    if (!me || !pending) {
        return;
    }
    const list = reply.successful && reply.data && reply.data.members;
    if (!Array.isArray(list)) {
        notice('Who is in the room is not known.');
        pending = null;
        return;
    }
    members = new Set(list.filter((name) => typeof name === 'string'));
    members.add(me.name);
    for (const p of pending) {
        present(p.user, p.present);
    }
    pending = null;
    if (privateTo !== null && !members.has(privateTo)) {
        choosePrivate(null);
    }
    renderMembers();
}

function sendPrivate(to, text) {
    cometd.remoteCall('private', { to, text }, CALL_TIMEOUT, (reply) => {
        if (reply.successful) {
            say({ user: me ? me.name : '', text, to, mine: true });
        } else if (/^404:/.test(reply.error || '')) {
            notice(`${to} is not in the room: not sent.`);
        } else {
            notice(`Not sent to ${to}: ${reply.error || 'no answer'}.`);
        }
    });
}

// --------------------------------------------------------- the connection

function onHandshake(reply) {
    if (!me) {
        return;
    }
    if (!reply.successful) {
        setStatus('offline', 'Cannot reach the server; trying again…');
        return;
    }
    // first handshake, or a new one after the server forgot us: (re)join,
    // follow who comes and goes, then ask who is here (the list is made
    // after the subscription: /presence tells what changes after it)
    if (!me.id) {
        // a reloaded page: the handshake reply is the saved one, replayed
        notice(reply.ext && reply.ext.reload
               ? `You are back as ${me.name}: the page was reloaded, `
                 + 'the session kept.'
               : `You joined as ${me.name}.`);
    }
    me.id = reply.clientId;
    members.add(me.name);
    pending = [];
    renderMembers();
    cometd.batch(() => {
        cometd.subscribe(ROOM, onChat);
        cometd.subscribe(PRESENCE, onPresence);
        cometd.remoteCall('members', {}, CALL_TIMEOUT, onMembers);
    });
}

function onConnect(reply) {
    if (!me || cometd.isDisconnected()) {
        return;
    }
    if (reply.successful) {
        setStatus('online',
                  `Connected as ${me.name} · ${cometd.getTransport().type}`);
    } else {
        setStatus('offline', 'Connection lost; reconnecting…');
    }
}

function join(name) {
    me = { name, id: null };
    members = new Set();
    pending = null;
    ui.messages.replaceChildren();
    choosePrivate(null);
    setStatus('connecting', 'Connecting…');

    cometd = newCometD();
    // the same ext goes with every handshake, a new one after the server
    // forgot the session included
    cometd.handshake({ ext: { login: { name } } }, (reply) => {
        if (!reply.successful) {
            if (reply.error === '403::handshake_denied') {
                ui.joinError.textContent = 'Name refused: use 1 to 32 '
                    + 'letters, digits, spaces, "_" or "-".';
            } else {
                ui.joinError.textContent = 'The chat server does not '
                                           + 'answer. Is it running?';
            }
            ui.joinError.hidden = false;
            cometd.disconnect();
            cometd = null;
            me = null;
            setStatus('offline', 'Not connected');
            ui.name.focus();
            ui.name.select();
            return;
        }
        ui.joinError.hidden = true;
        ui.join.hidden = true;
        ui.room.hidden = false;
        ui.text.focus();
    });
}

function leave() {
    if (!me || !cometd) {
        return;
    }
    // the others learn it from /presence (when this was the user's last
    // session), or, if the disconnect does not get out, once the session
    // expires
    cometd.disconnect();
    me = null;
    cometd = null;
    members = new Set();
    pending = null;
    choosePrivate(null);
    ui.room.hidden = true;
    ui.join.hidden = false;
    setStatus('offline', 'Not connected');
    ui.name.focus();
}

// ------------------------------------------------------------------- forms

ui.joinForm.addEventListener('submit', (event) => {
    event.preventDefault();
    const name = ui.name.value.trim().replace(/\s+/g, ' ');
    if (!name) {
        ui.joinError.textContent = 'Please enter a name.';
        ui.joinError.hidden = false;
        ui.name.focus();
        return;
    }
    join(name);
});

ui.sendForm.addEventListener('submit', (event) => {
    event.preventDefault();
    const text = ui.text.value.trim();
    if (!text || !me || !me.id) {
        return;
    }
    if (privateTo !== null) {
        sendPrivate(privateTo, text);
    } else {
        cometd.publish(ROOM, { user: me.name, id: me.id, text });
    }
    ui.text.value = '';
    ui.text.focus();
});

ui.privateCancel.addEventListener('click',
                                  () => choosePrivate(null, true));
ui.leave.addEventListener('click', leave);

// the page goes: leave, or (?reload=1) save the session for the next load
// of the page in this tab
window.addEventListener('pagehide', () => {
    if (keepOnReload && me && me.id && cometd) {
        window.sessionStorage.setItem(SAVED_NAME, me.name);
        cometd.reload();
        return;
    }
    leave();
});

const saved = keepOnReload && window.sessionStorage.getItem(SAVED_NAME);
window.sessionStorage.removeItem(SAVED_NAME);
if (saved) {
    join(saved);
} else {
    ui.name.focus();
}

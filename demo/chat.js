// Chat demo: the CometD JavaScript client (served from node_modules/cometd
// by util/demo, as ES modules) against ngx_bayeux_module at /cometd.
//
// Channels:
//   /chat/room      { user, id, text }               what people say
//   /chat/members   { type: "join", user, id, previous }
//                   { type: "here", user, id, to }    answer to a join
//                   { type: "leave", user, id }
// Each client announces itself when it joins and answers every join with
// "here", so a newcomer learns who is in the room; the server keeps no
// state of its own.  id is the client's Bayeux clientId.
//
// The name goes in the handshake's ext, { login: { name } }: the demo's
// application (demo/app.js, asked by nginx at every handshake) lets in a
// name of 1 to 32 letters, digits, spaces, "_" or "-", and grants the
// session the two channels above; it refuses anything else
// ("403::handshake_denied"), and the page asks for another name.
//
// ?transport=websocket, long-polling, callback-polling, or a list, in the
// order to try them, chooses the transports the client may use; the
// default, websocket,long-polling, is the CometD client's own: websocket,
// and long-polling when a websocket cannot be opened.
// ?url=http://other.host:8081/cometd talks to a Bayeux endpoint of another
// origin (which must allow this page's origin: bayeux_allow_origin, and
// bayeux_allow_credentials on, as the CometD client sends credentials);
// by default the endpoint is /cometd next to the page.

import {
    CallbackPollingTransport, CometD, LongPollingTransport,
    WebSocketTransport,
} from './lib/cometd/cometd.js';

const ROOM = '/chat/room';
const MEMBERS = '/chat/members';

const params = new URLSearchParams(window.location.search);
const wanted = (params.get('transport') || 'websocket,long-polling').split(',');
const endpoint = new URL(params.get('url') || 'cometd', window.location.href);

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
};

let cometd = null;
let me = null;                  // { name, id }
const members = new Map();      // clientId -> name

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
    c.configure({
        url: endpoint.href,
        logLevel: 'warn',
    });
    c.addListener('/meta/handshake', onHandshake);
    c.addListener('/meta/connect', onConnect);
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

function say(data) {
    const li = document.createElement('li');
    li.className = 'message' + (me && data.id === me.id ? ' mine' : '');
    const who = document.createElement('span');
    who.className = 'who';
    who.textContent = data.user;
    const t = document.createElement('time');
    t.textContent = time();
    const text = document.createElement('p');
    text.className = 'text';
    text.textContent = data.text;
    li.append(who, ' ', t, text);
    ui.messages.append(li);
    scrollDown();
}

function renderMembers() {
    const sorted = [...members].sort((a, b) => a[1].localeCompare(b[1]));
    ui.members.replaceChildren(...sorted.map(([id, name]) => {
        const li = document.createElement('li');
        li.dataset.id = id;
        li.textContent = name;
        if (me && id === me.id) {
            li.className = 'me';
            const you = document.createElement('span');
            you.className = 'you';
            you.textContent = ' (you)';
            li.append(you);
        }
        return li;
    }));
    ui.memberCount.textContent = `(${members.size})`;
}

function onChat(message) {
    const data = message.data;
    if (data && typeof data.text === 'string' && typeof data.user === 'string') {
        say(data);
    }
}

function onPresence(message) {
    const p = message.data;
    if (!p || typeof p.id !== 'string' || typeof p.user !== 'string') {
        return;
    }
    switch (p.type) {
    case 'join': {
        const back = p.previous && members.delete(p.previous);
        const known = members.has(p.id);
        members.set(p.id, p.user);
        if (p.id === me.id) {
            if (!back) {
                notice(`You joined as ${p.user}.`);
            }
        } else {
            if (!known && !back) {
                notice(`${p.user} joined.`);
            }
            cometd.publish(MEMBERS, { type: 'here', user: me.name, id: me.id,
                                      to: p.id });
        }
        break;
    }
    case 'here':
        members.set(p.id, p.user);
        break;
    case 'leave':
        if (members.delete(p.id) && p.id !== me.id) {
            notice(`${p.user} left.`);
        }
        break;
    default:
        return;
    }
    renderMembers();
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
    // first handshake, or a new one after the server forgot us: (re)join
    const previous = me.id;
    me.id = reply.clientId;
    members.set(me.id, me.name);
    if (previous) {
        members.delete(previous);
    }
    renderMembers();
    cometd.batch(() => {
        cometd.subscribe(ROOM, onChat);
        cometd.subscribe(MEMBERS, onPresence);
        cometd.publish(MEMBERS, { type: 'join', user: me.name, id: me.id,
                                  previous });
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
    members.clear();
    ui.messages.replaceChildren();
    renderMembers();
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
    const c = cometd;
    const { name, id } = me;
    me = null;
    cometd = null;
    if (id && !c.isDisconnected()) {
        // say goodbye, then disconnect once the server has it
        c.publish(MEMBERS, { type: 'leave', user: name, id },
                  () => c.disconnect());
    } else {
        c.disconnect();
    }
    members.clear();
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
    cometd.publish(ROOM, { user: me.name, id: me.id, text });
    ui.text.value = '';
    ui.text.focus();
});

ui.leave.addEventListener('click', leave);
window.addEventListener('pagehide', leave);

ui.name.focus();

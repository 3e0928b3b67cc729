// The web app: sign in, then one conversation with the assistant over /ws/voice (spoken or
// typed), the microphone's state, and the page each reply names (cards.js).
// Protocol: docs/voice.md. No framework; nothing loaded from elsewhere; nothing inline.

import { Player } from "./playback.js";
import { cardFor, el } from "./cards.js";

const TARGET_RATE = 16000; // what /ws/voice expects: PCM16LE mono 16 kHz
const FRAME_SAMPLES = 1600; // 100 ms per binary frame
const DOTS = "••••••";

const $ = (id) => document.getElementById(id);
const root = $("app");
const ui = {
  account: $("account"),
  who: $("who"),
  signOut: $("sign-out"),
  error: $("error"),
  signInView: $("sign-in-view"),
  signInForm: $("sign-in-form"),
  email: $("email"),
  signInPassword: $("sign-in-password"),
  demoForm: $("demo-form"),
  demoUser: $("demo-user"),
  assistantView: $("assistant-view"),
  conversation: $("conversation"),
  mic: $("mic"),
  micLabel: $("mic-label"),
  micState: $("mic-state"),
  level: $("level"),
  openMic: $("open-mic"),
  textForm: $("text-form"),
  text: $("text"),
  sendText: $("send-text"),
  reconnect: $("reconnect"),
  pageHeading: $("page-heading"),
  pageEmpty: $("page-empty"),
  pageBody: $("page-body"),
  passwordForm: $("password-form"),
  password: $("password"),
  notifications: $("notifications"),
  notificationList: $("notification-list"),
  status: $("status"),
  announcer: $("announcer"),
};

const player = new Player((p) => {
  root.dataset.audioChunks = String(p.chunks);
  root.dataset.audioPlayedMs = String(p.playedMs);
  root.dataset.playing = String(p.playing);
  root.dataset.audioInterruptions = String(p.interruptions);
  if (!p.playing && phase === "speaking" && audioDone) setPhase(idlePhase());
});

// Who is signed in: the access token lives in this variable only (never on the page).
let session = null; // { token, userId, name }
let socket = null; // the open (or opening) WebSocket
let ready = false; // the server sent `ready`
let capture = null; // { stream, context } while the microphone is on
let phase = "idle"; // idle | listening | thinking | speaking (the microphone button)
let audioDone = true; // the server sent the reply's audio_end
let pendingBubble = null; // the user's bubble while their speech is being decided
let transfer = null; // the transfer the last card showed ({to, amount, unusual})
let replies = 0;
let bargeIns = 0;
let interrupted = false; // the person spoke over the last reply

// --- what the page says --------------------------------------------------------------

function setStatus(text) {
  ui.status.textContent = text;
}

function showError(message) {
  ui.error.textContent = message;
  ui.error.hidden = false;
}

function clearError() {
  ui.error.textContent = "";
  ui.error.hidden = true;
}

/** Screen readers hear every reply through this live region. */
function announce(text) {
  ui.announcer.textContent = "";
  // A new node each time, so that the same words said twice are announced twice.
  ui.announcer.append(el("p", text));
}

function bubble(who, text, className = "") {
  const item = el("li", "", `bubble ${who} ${className}`.trim());
  item.append(el("span", who === "user" ? "You" : "Assistant", "speaker"), el("p", text));
  ui.conversation.append(item);
  item.scrollIntoView({ block: "nearest" });
  return item;
}

function setBubbleText(item, text, secret = false) {
  const words = item.querySelector("p");
  words.textContent = text;
  item.classList.toggle("interim", false);
  item.classList.toggle("secret", secret);
  if (secret) words.setAttribute("aria-label", "your password (hidden)");
}

const PHASE_TEXT = {
  offline: "Not connected",
  idle: "Microphone off",
  listening: "Listening…",
  thinking: "Thinking…",
  speaking: "Speaking… talk over it to interrupt",
};

function idlePhase() {
  return capture ? "listening" : "idle";
}

/** The microphone button and `data-state` show the phase. */
function setPhase(next) {
  phase = next;
  render();
}

function render() {
  const connected = Boolean(socket && ready);
  const shown = connected ? phase : "offline";
  root.dataset.state = shown;
  ui.micLabel.textContent = capture ? "Stop" : "Talk";
  ui.micState.textContent =
    shown === "listening" && interrupted ? "You interrupted: listening…" : PHASE_TEXT[shown];
  root.dataset.interrupted = String(interrupted);
  ui.mic.disabled = !socket; // it may be pressed while connecting: frames go once ready
  ui.text.disabled = ui.sendText.disabled = !connected;
  ui.reconnect.hidden = Boolean(socket) || !session;
  if (!capture) ui.level.value = 0;
}

function showView(signedIn) {
  root.dataset.view = signedIn ? "assistant" : "sign-in";
  ui.signInView.hidden = signedIn;
  ui.assistantView.hidden = !signedIn;
  ui.account.hidden = !signedIn;
  ui.who.textContent = signedIn ? `Signed in as ${session.name}` : "";
}

// --- the page the reply names -----------------------------------------------------------

function showCard(event) {
  const data = event.data || {};
  const card = cardFor(event, transfer);
  if (card) {
    ui.pageHeading.textContent = card.heading;
    ui.pageBody.replaceChildren(card.body);
    ui.pageEmpty.hidden = true;
    ui.pageBody.closest(".card").dataset.kind = card.kind;
    transfer = card.kind === "transfer" && data.awaiting ? card.transfer : null;
  }
  const askPassword = Boolean(data.require_password);
  ui.passwordForm.hidden = !askPassword;
  if (askPassword) ui.password.focus();
  if (data.success === true) refreshNotifications();
}

/** The unread notifications (they need a token: not for a demo user without one). */
async function refreshNotifications() {
  if (!session || !session.token) return;
  let answer;
  try {
    const response = await fetch("/api/notifications/?limit=5", {
      headers: { Authorization: `Bearer ${session.token}` },
    });
    if (!response.ok) return;
    answer = await response.json();
  } catch {
    return; // the conversation goes on without them
  }
  const unread = (answer.notifications || []).filter((item) => !item.read);
  ui.notifications.hidden = unread.length === 0;
  ui.notificationList.replaceChildren(
    ...unread.map((item) => {
      const row = el("li");
      row.append(el("strong", item.title), el("span", ` ${item.message}`));
      return row;
    }),
  );
}

// --- the microphone -----------------------------------------------------------------------

function send(message) {
  if (socket && ready && socket.readyState === WebSocket.OPEN) socket.send(message);
}

function level(frame) {
  const samples = new Int16Array(frame);
  let sum = 0;
  for (const sample of samples) sum += sample * sample;
  const rms = Math.sqrt(sum / Math.max(1, samples.length)) / 0x8000;
  return Math.min(1, rms * 4); // speech at a normal distance fills most of the meter
}

async function openCapture() {
  const stream = await navigator.mediaDevices.getUserMedia({
    audio: { channelCount: 1, echoCancellation: true, noiseSuppression: true },
  });
  let context = new AudioContext({ sampleRate: TARGET_RATE });
  let source;
  try {
    source = context.createMediaStreamSource(stream);
  } catch {
    // Some browsers refuse a microphone in a context at another rate: the worklet resamples.
    await context.close();
    context = new AudioContext();
    source = context.createMediaStreamSource(stream);
  }
  await context.audioWorklet.addModule(new URL("capture-worklet.js", import.meta.url));
  const node = new AudioWorkletNode(context, "capture-processor", {
    numberOfInputs: 1,
    numberOfOutputs: 0,
    channelCount: 1,
    channelCountMode: "explicit",
    processorOptions: { targetRate: TARGET_RATE, frameSamples: FRAME_SAMPLES },
  });
  node.port.onmessage = (event) => {
    if (!capture || capture.stream !== stream) return;
    ui.level.value = level(event.data);
    send(event.data);
  };
  source.connect(node);
  await context.resume();
  return { stream, context };
}

function closeCapture() {
  if (!capture) return;
  for (const track of capture.stream.getTracks()) track.stop();
  capture.context.close();
  capture = null;
}

/** Barge-in: the person speaks (or taps) over the spoken reply, which stops at once. */
function interrupt() {
  if (!player.playing) return;
  player.stop();
  bargeIns += 1;
  root.dataset.bargeIns = String(bargeIns);
  interrupted = true; // shown until what was said over it is decided
  render();
}

async function micOn() {
  clearError();
  interrupt();
  try {
    const opened = await openCapture();
    if (!socket) {
      for (const track of opened.stream.getTracks()) track.stop();
      opened.context.close();
      return;
    }
    capture = opened;
    setPhase("listening");
    setStatus("Listening… speak now.");
  } catch (error) {
    const refused = error && error.name === "NotAllowedError";
    showError(
      refused
        ? "The microphone was refused. Allow it in the browser's site settings, or type instead."
        : `The microphone is not available (${error.message}). You can type instead.`,
    );
    setPhase("idle");
    ui.text.focus();
  }
}

function micOff() {
  if (phase === "listening") send(JSON.stringify({ type: "end_of_speech" }));
  closeCapture();
  setPhase(phase === "listening" ? "idle" : phase);
}

function toggleMic() {
  if (ui.mic.disabled) return;
  if (capture) micOff();
  else micOn();
}

/** Tap to talk: the microphone closes once an utterance is decided. */
function utteranceDecided() {
  if (!ui.openMic.checked && capture) closeCapture();
}

// --- the conversation ---------------------------------------------------------------------

function onReply(event) {
  interrupted = false;
  replies += 1;
  root.dataset.replies = String(replies);
  bubble("assistant", event.reply);
  announce(`Assistant: ${event.reply}`);
  showCard(event);
  setStatus("");
}

function onEvent(event) {
  switch (event.type) {
    case "ready":
      ready = true;
      setStatus("Connected. Press Talk, or type a message.");
      break;
    case "speech_start":
      interrupt();
      if (!pendingBubble) pendingBubble = bubble("user", "…", "interim");
      setPhase("listening");
      break;
    case "transcript":
      clearError();
      if (!pendingBubble) pendingBubble = bubble("user", "…", "interim");
      setBubbleText(pendingBubble, event.text, event.text.includes("•"));
      if (event.final !== false) {
        pendingBubble = null;
        interrupted = false;
        utteranceDecided();
        setPhase("thinking");
      } else {
        pendingBubble.classList.add("interim");
      }
      break;
    case "no_speech":
      if (pendingBubble) pendingBubble.remove();
      pendingBubble = null;
      interrupted = false;
      utteranceDecided();
      setPhase(idlePhase());
      break;
    case "reply":
      clearError();
      onReply(event);
      break;
    case "audio_start":
      audioDone = false;
      player.begin(event.sample_rate);
      setPhase("speaking");
      break;
    case "audio_end":
      audioDone = true;
      if (event.interrupted) player.stop();
      if (!player.playing) setPhase(idlePhase());
      break;
    case "error":
      showError(event.message);
      if (phase === "thinking") setPhase(idlePhase());
      break;
    default:
      break; // pong, and events of later protocol versions
  }
  render();
}

function parseEvent(text) {
  try {
    return JSON.parse(text);
  } catch {
    return { type: "error", message: "The server sent a message this page cannot read." };
  }
}

function connect() {
  // A token names its user; the user id alone is for servers in demo mode.
  const params = new URLSearchParams(
    session.token ? { token: session.token } : { user_id: String(session.userId) },
  );
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  const ws = new WebSocket(`${scheme}//${location.host}/ws/voice?${params}`);
  ws.binaryType = "arraybuffer";
  socket = ws;
  ready = false;
  setStatus("Connecting…");
  ws.onmessage = (message) => {
    if (ws !== socket) return;
    if (typeof message.data !== "string") player.push(message.data);
    else onEvent(parseEvent(message.data));
  };
  ws.onclose = (close) => {
    if (ws !== socket) return;
    disconnect();
    if (close.code !== 1000 && ui.error.hidden) {
      const reason = close.reason ? `: ${close.reason}` : "";
      showError(`The server closed the connection (code ${close.code}${reason}).`);
    }
    setStatus("Disconnected. Press Reconnect to go on.");
  };
  render();
}

function disconnect() {
  const ws = socket;
  socket = null;
  ready = false;
  if (ws && ws.readyState <= WebSocket.OPEN) ws.close(1000);
  closeCapture();
  player.stop();
  pendingBubble = null;
  setPhase("idle");
}

// --- signing in and out -------------------------------------------------------------------

/** Forgets the conversation and its cards (signing out, or in as someone else). */
function reset() {
  ui.conversation.replaceChildren();
  ui.pageHeading.textContent = "Your account";
  ui.pageBody.replaceChildren();
  ui.pageEmpty.hidden = false;
  ui.passwordForm.hidden = true;
  ui.notifications.hidden = true;
  ui.announcer.replaceChildren();
  transfer = null;
}

function begin(newSession) {
  session = newSession;
  reset();
  showView(true);
  connect();
  refreshNotifications();
  ui.mic.focus();
}

/** Logs in (POST /api/auth/login); the token is kept in memory for the socket. */
async function signIn() {
  clearError();
  const email = ui.email.value.trim();
  const body = new URLSearchParams({ username: email, password: ui.signInPassword.value });
  ui.signInPassword.value = ""; // the password is sent once and kept nowhere
  let response;
  try {
    response = await fetch("/api/auth/login", { method: "POST", body });
  } catch (error) {
    showError(`Signing in failed (${error.message}).`);
    return;
  }
  const answer = await response.json().catch(() => ({}));
  if (!response.ok || !answer.access_token) {
    showError(answer.message || "Signing in failed: check the email and the password.");
    ui.signInPassword.focus();
    return;
  }
  begin({ token: answer.access_token, userId: null, name: email });
}

async function signOut() {
  const token = session && session.token;
  disconnect();
  session = null;
  reset();
  showView(false);
  clearError();
  setStatus("Signed out.");
  ui.email.focus();
  if (token) {
    await fetch("/api/auth/logout", {
      method: "POST",
      headers: { Authorization: `Bearer ${token}` },
    }).catch(() => {});
  }
}

// --- controls -------------------------------------------------------------------------------

ui.signInForm.addEventListener("submit", (event) => {
  event.preventDefault();
  player.unlock(); // inside the gesture: browsers allow sound only after one
  signIn();
});

ui.demoForm.addEventListener("submit", (event) => {
  event.preventDefault();
  player.unlock();
  const userId = Number(ui.demoUser.value);
  clearError();
  begin({ token: null, userId, name: `demo user ${userId}` });
});

ui.signOut.addEventListener("click", signOut);
ui.reconnect.addEventListener("click", () => {
  clearError();
  connect();
});
ui.mic.addEventListener("click", () => {
  player.unlock();
  toggleMic();
});

ui.passwordForm.addEventListener("submit", (event) => {
  event.preventDefault();
  interrupt();
  send(JSON.stringify({ type: "password", password: ui.password.value }));
  ui.password.value = "";
  ui.passwordForm.hidden = true;
  setBubbleText(bubble("user", DOTS), DOTS, true);
  setPhase("thinking");
  ui.text.focus();
});

ui.textForm.addEventListener("submit", (event) => {
  event.preventDefault();
  const text = ui.text.value.trim();
  if (!text) return;
  interrupt();
  send(JSON.stringify({ type: "text", text }));
  bubble("user", text);
  ui.text.value = "";
  setPhase("thinking");
});

document.addEventListener("keydown", (event) => {
  if (event.key === "Escape" && player.playing) interrupt();
  if (event.altKey && event.code === "KeyM" && session) {
    event.preventDefault();
    player.unlock();
    toggleMic();
  }
});

ui.demoForm.hidden = root.dataset.demoMode !== "true";
showView(false);
render();

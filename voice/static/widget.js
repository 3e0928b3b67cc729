// The voice widget: microphone -> /ws/voice -> transcript, reply text and spoken reply.
// Protocol: docs/voice.md. No framework; nothing loaded from elsewhere.

import { Player } from "./playback.js";

const TARGET_RATE = 16000; // what /ws/voice expects: PCM16LE mono 16 kHz
const FRAME_SAMPLES = 1600; // 100 ms per binary frame

const $ = (id) => document.getElementById(id);
const root = $("voice");
const ui = {
  signInForm: $("sign-in-form"),
  email: $("email"),
  signInPassword: $("sign-in-password"),
  signIn: $("sign-in"),
  connectForm: $("connect-form"),
  userId: $("user-id"),
  token: $("token"),
  listen: $("listen"),
  status: $("status"),
  error: $("error"),
  transcript: $("transcript"),
  reply: $("reply"),
  timings: $("timings"),
  passwordForm: $("password-form"),
  password: $("password"),
  textForm: $("text-form"),
  text: $("text"),
  sendText: $("send-text"),
};

const player = new Player((p) => {
  root.dataset.audioChunks = String(p.chunks);
  root.dataset.audioPlayedMs = String(p.playedMs);
  root.dataset.playing = String(p.playing);
  root.dataset.audioInterruptions = String(p.interruptions);
});

let socket = null; // the open (or opening) WebSocket
let capture = null; // { stream, context } while the microphone is on
let ready = false; // the server sent `ready`
let replies = 0; // replies shown since the page opened

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

/** Reflects the connection in the controls and in `data-state` (idle/connecting/...). */
function render() {
  const state = !socket ? "idle" : !ready ? "connecting" : capture ? "listening" : "connected";
  root.dataset.state = state;
  ui.listen.textContent = socket ? "Stop listening" : "Start listening";
  ui.listen.setAttribute("aria-pressed", String(Boolean(socket)));
  ui.userId.disabled = ui.token.disabled = Boolean(socket);
  ui.email.disabled = ui.signInPassword.disabled = ui.signIn.disabled = Boolean(socket);
  ui.text.disabled = ui.sendText.disabled = !ready;
  if (!socket) ui.passwordForm.hidden = true;
}

function send(message) {
  if (socket && ready && socket.readyState === WebSocket.OPEN) socket.send(message);
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
  node.port.onmessage = (event) => send(event.data);
  source.connect(node);
  await context.resume();
  return { stream, context };
}

function release({ stream, context }) {
  for (const track of stream.getTracks()) track.stop();
  context.close();
}

function formatTimings(timings) {
  return Object.entries(timings || {})
    .map(([stage, ms]) => `${stage.replace(/_ms$/, "").replace("_", " ")} ${Math.round(ms)} ms`)
    .join(" · ");
}

function onReply(event) {
  replies += 1;
  root.dataset.replies = String(replies);
  ui.reply.textContent = event.reply;
  ui.timings.textContent = formatTimings(event.timings);
  const askPassword = Boolean(event.data && event.data.require_password);
  ui.passwordForm.hidden = !askPassword;
  if (askPassword) ui.password.focus();
  setStatus(capture ? "Listening…" : "Connected.");
}

function parseEvent(text) {
  try {
    return JSON.parse(text);
  } catch {
    return { type: "error", message: "The server sent a message this page cannot read." };
  }
}

function onEvent(event) {
  switch (event.type) {
    case "ready":
      ready = true;
      setStatus(capture ? "Listening… speak now." : "Connected.");
      break;
    case "speech_start":
      if (player.playing) player.stop(); // barge-in
      setStatus("Hearing you…");
      break;
    case "transcript":
      clearError();
      ui.transcript.textContent = event.text;
      ui.transcript.classList.toggle("interim", !event.final);
      if (event.final) setStatus("Thinking…");
      break;
    case "no_speech":
      setStatus(capture ? "Listening… speak now." : "Connected.");
      break;
    case "reply":
      clearError();
      onReply(event);
      break;
    case "audio_start":
      player.begin(event.sample_rate);
      break;
    case "audio_end":
      if (event.interrupted) player.stop();
      break;
    case "error":
      showError(event.message);
      break;
    default:
      break; // pong, and events of later protocol versions
  }
  render();
}

function connect(userId, token) {
  // A token names its user; the user id alone is for servers in demo mode.
  const params = new URLSearchParams(token ? { token } : { user_id: userId });
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  const ws = new WebSocket(`${scheme}//${location.host}/ws/voice?${params}`);
  ws.binaryType = "arraybuffer";
  ws.onmessage = (message) => {
    if (ws !== socket) return;
    if (typeof message.data !== "string") player.push(message.data);
    else onEvent(parseEvent(message.data));
  };
  ws.onclose = (close) => {
    if (ws !== socket) return;
    stop();
    if (close.code !== 1000 && ui.error.hidden) {
      showError(`The connection closed (code ${close.code}${close.reason ? `: ${close.reason}` : ""}).`);
    }
    setStatus("Disconnected.");
  };
  return ws;
}

async function start() {
  clearError();
  ready = false;
  await player.unlock(); // inside the click: browsers allow sound only after a gesture
  const ws = connect(ui.userId.value, ui.token.value.trim());
  socket = ws;
  setStatus("Connecting…");
  render();
  try {
    const opened = await openCapture();
    if (ws === socket) capture = opened;
    else release(opened); // stopped while the microphone was opening
  } catch (error) {
    showError(`The microphone is not available (${error.message}). You can type instead.`);
  }
  if (ws === socket && ready) setStatus(capture ? "Listening… speak now." : "Connected.");
  render();
}

function stop() {
  const ws = socket;
  socket = null;
  ready = false;
  if (ws && ws.readyState <= WebSocket.OPEN) ws.close(1000);
  if (capture) release(capture);
  capture = null;
  player.stop();
  render();
}

/** Logs in (POST /api/auth/login) and keeps the access token for the connection. */
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
    return;
  }
  ui.token.value = answer.access_token;
  setStatus(`Signed in as ${email}. Press “Start listening” and speak.`);
}

ui.signInForm.addEventListener("submit", (event) => {
  event.preventDefault();
  signIn();
});

ui.connectForm.addEventListener("submit", (event) => {
  event.preventDefault();
  if (socket) {
    stop();
    setStatus("Stopped.");
  } else {
    start();
  }
});

ui.passwordForm.addEventListener("submit", (event) => {
  event.preventDefault();
  send(JSON.stringify({ type: "password", password: ui.password.value }));
  ui.password.value = "";
  ui.passwordForm.hidden = true;
  setStatus("Checking your password…");
  if (!ui.text.disabled) ui.text.focus();
});

ui.textForm.addEventListener("submit", (event) => {
  event.preventDefault();
  const text = ui.text.value.trim();
  if (!text) return;
  send(JSON.stringify({ type: "text", text }));
  ui.transcript.textContent = text; // typed words get no transcript event
  ui.transcript.classList.remove("interim");
  ui.text.value = "";
  setStatus("Thinking…");
});

// Escape silences the spoken reply without closing the conversation.
document.addEventListener("keydown", (event) => {
  if (event.key === "Escape" && player.playing) player.stop();
});

render();

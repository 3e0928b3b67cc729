// Gapless playback of the reply's PCM16LE chunks, with an immediate stop for barge-in.

const START_LEAD_S = 0.05; // head start for the first chunk after an idle gap

export class Player {
  /** `onChange(player)` runs whenever the queue or the counters change. */
  constructor(onChange = () => {}) {
    this.onChange = onChange;
    this.context = null;
    this.sampleRate = 22050;
    this.sources = new Set();
    this.nextStart = 0;
    this.carry = null; // an odd trailing byte from the previous chunk
    this.chunks = 0; // chunks received, all replies
    this.playedMs = 0; // audio played to its end, all replies
    this.interruptions = 0; // replies cut off while playing (barge-in)
  }

  /** Creates or resumes the output context: call from a user gesture (autoplay policy). */
  async unlock() {
    this.context ??= new AudioContext();
    await this.context.resume();
  }

  get playing() {
    return this.sources.size > 0;
  }

  /** A reply's audio begins (`audio_start`). */
  begin(sampleRate) {
    this.sampleRate = sampleRate;
    this.carry = null;
  }

  /** Queues one binary frame right after whatever is already queued. */
  push(data) {
    if (!this.context) return;
    let bytes = new Uint8Array(data);
    if (this.carry !== null) {
      const joined = new Uint8Array(bytes.length + 1);
      joined[0] = this.carry;
      joined.set(bytes, 1);
      bytes = joined;
      this.carry = null;
    }
    if (bytes.length % 2) {
      this.carry = bytes[bytes.length - 1];
      bytes = bytes.subarray(0, bytes.length - 1);
    }
    const count = bytes.length / 2;
    if (count === 0) return;
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.length);
    const buffer = this.context.createBuffer(1, count, this.sampleRate);
    const samples = buffer.getChannelData(0);
    for (let i = 0; i < count; i++) samples[i] = view.getInt16(2 * i, true) / 0x8000;
    this.schedule(buffer);
    this.chunks += 1;
    this.onChange(this);
  }

  schedule(buffer) {
    const source = this.context.createBufferSource();
    source.buffer = buffer;
    source.connect(this.context.destination);
    const start = Math.max(this.nextStart, this.context.currentTime + START_LEAD_S);
    source.start(start);
    this.nextStart = start + buffer.duration;
    this.sources.add(source);
    source.onended = () => {
      this.sources.delete(source);
      this.playedMs += Math.round(buffer.duration * 1000);
      this.onChange(this);
    };
  }

  /** Barge-in: silences everything queued at once. */
  stop() {
    if (this.playing) this.interruptions += 1;
    for (const source of this.sources) {
      source.onended = null;
      source.stop();
    }
    this.sources.clear();
    this.nextStart = 0;
    this.carry = null;
    this.onChange(this);
  }
}

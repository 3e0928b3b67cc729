// AudioWorklet processor: microphone samples -> 16 kHz PCM16LE frames for /ws/voice.
//
// The context may run at any rate (the widget asks for 16 kHz, but a browser may refuse): a
// windowed-sinc low-pass resampler brings the samples to the target rate without aliasing,
// and every `frameSamples` output samples are posted to the main thread as an ArrayBuffer.

/** Streaming band-limited resampler (Hann-windowed sinc, evaluated at each output time). */
class SincResampler {
  constructor(inputRate, outputRate, zeroCrossings = 16, tableSteps = 128) {
    this.step = inputRate / outputRate; // input samples per output sample
    // Low-pass a little below the output Nyquist frequency when downsampling.
    const cutoff = Math.min(1, (outputRate / inputRate) * 0.92);
    this.halfWidth = Math.ceil(zeroCrossings / cutoff); // in input samples
    // The kernel tabulated every 1/tableSteps input sample, read with linear interpolation.
    this.tableSteps = tableSteps;
    this.table = new Float32Array(this.halfWidth * tableSteps + 2);
    for (let i = 0; i < this.table.length; i++) {
      const distance = i / tableSteps;
      const x = Math.PI * distance * cutoff;
      const sinc = x === 0 ? 1 : Math.sin(x) / x;
      const window = 0.5 * (1 + Math.cos((Math.PI * distance) / this.halfWidth));
      this.table[i] = distance < this.halfWidth ? cutoff * sinc * window : 0;
    }
    this.history = new Float32Array(0);
    this.position = 0; // time of the next output sample, in samples of `history`
  }

  kernel(distance) {
    const at = Math.abs(distance) * this.tableSteps;
    const index = Math.floor(at);
    const fraction = at - index;
    return this.table[index] + fraction * (this.table[index + 1] - this.table[index]);
  }

  /** Resamples one block; returns the output samples it completes. */
  push(block) {
    const buffer = new Float32Array(this.history.length + block.length);
    buffer.set(this.history);
    buffer.set(block, this.history.length);
    const output = [];
    while (this.position + this.halfWidth < buffer.length) {
      const centre = this.position;
      const first = Math.max(0, Math.ceil(centre - this.halfWidth));
      const last = Math.floor(centre + this.halfWidth);
      let sum = 0;
      for (let i = first; i <= last; i++) sum += buffer[i] * this.kernel(i - centre);
      output.push(sum);
      this.position += this.step;
    }
    const consumed = Math.max(0, Math.floor(this.position - this.halfWidth));
    this.history = buffer.slice(consumed);
    this.position -= consumed;
    return output;
  }
}

class CaptureProcessor extends AudioWorkletProcessor {
  constructor(options) {
    super();
    const { targetRate = 16000, frameSamples = 1600 } = options.processorOptions || {};
    // `sampleRate` is the context's rate, a global of the worklet scope.
    this.resampler = sampleRate === targetRate ? null : new SincResampler(sampleRate, targetRate);
    this.frameSamples = frameSamples;
    this.frame = new Int16Array(frameSamples);
    this.filled = 0;
  }

  append(samples) {
    for (const sample of samples) {
      const clipped = Math.max(-1, Math.min(1, sample));
      this.frame[this.filled++] = clipped < 0 ? clipped * 0x8000 : clipped * 0x7fff;
      if (this.filled === this.frameSamples) {
        this.port.postMessage(this.frame.buffer, [this.frame.buffer]);
        this.frame = new Int16Array(this.frameSamples);
        this.filled = 0;
      }
    }
  }

  process(inputs) {
    const channel = inputs[0] && inputs[0][0]; // the node down-mixes its input to mono
    if (channel) this.append(this.resampler ? this.resampler.push(channel) : channel);
    return true;
  }
}

registerProcessor("capture-processor", CaptureProcessor);

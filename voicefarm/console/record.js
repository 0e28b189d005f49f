// A microphone recording (MediaRecorder), handed back as WAV: the farm reads WAV, FLAC, MP3 and
// OGG, and Chromium records only WebM, so the browser decodes it and writes 16-bit PCM.
export async function startRecording() {
  const stream = await navigator.mediaDevices.getUserMedia({ audio: true });
  const recorder = new MediaRecorder(stream);
  const chunks = [];
  recorder.addEventListener("dataavailable", (e) => chunks.push(e.data));
  const stopped = new Promise((resolve) => recorder.addEventListener("stop", resolve, { once: true }));
  recorder.start();
  return {
    async stop() {
      recorder.stop();
      await stopped;
      for (const track of stream.getTracks()) track.stop();
      const context = new AudioContext();
      try {
        const audio = await context.decodeAudioData(await new Blob(chunks).arrayBuffer());
        return wav(audio.getChannelData(0), audio.sampleRate);
      } finally {
        context.close();
      }
    },
  };
}

function wav(samples, rate) {
  const data = new DataView(new ArrayBuffer(44 + samples.length * 2));
  const text = (offset, s) => [...s].forEach((c, i) => data.setUint8(offset + i, c.charCodeAt(0)));
  text(0, "RIFF");
  data.setUint32(4, 36 + samples.length * 2, true);
  text(8, "WAVEfmt ");
  data.setUint32(16, 16, true); // fmt chunk size
  data.setUint16(20, 1, true); // PCM
  data.setUint16(22, 1, true); // mono
  data.setUint32(24, rate, true);
  data.setUint32(28, rate * 2, true); // bytes per second
  data.setUint16(32, 2, true); // bytes per frame
  data.setUint16(34, 16, true); // bits per sample
  text(36, "data");
  data.setUint32(40, samples.length * 2, true);
  samples.forEach((s, i) => data.setInt16(44 + i * 2, Math.max(-1, Math.min(1, s)) * 0x7fff, true));
  return new Blob([data], { type: "audio/wav" });
}

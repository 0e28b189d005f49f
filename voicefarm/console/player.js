// Playing a job's audio: as it is made, through GET /v1/jobs/{id}/stream?format=mp3 into Media
// Source Extensions, or, where MSE cannot take MP3 or the stream broke, the finished file.
import { blob, call } from "./api.js";

export const canStream = () => "MediaSource" in window && MediaSource.isTypeSupported("audio/mpeg");

function append(buffer, chunk) {
  return new Promise((resolve, reject) => {
    buffer.addEventListener("updateend", resolve, { once: true });
    buffer.addEventListener("error", () => reject(new Error("the browser could not decode the stream")), { once: true });
    buffer.appendBuffer(chunk);
  });
}

// Streams the job into `audio`; calls onFirst() when the first audio arrives. Rejects when the
// stream breaks (the engine failed after its audio began), with the API's message if it sent one.
export async function stream(audio, jobId, onFirst, signal) {
  const response = await call(`/v1/jobs/${jobId}/stream?format=mp3`, { raw: true, signal });
  const source = new MediaSource();
  audio.src = URL.createObjectURL(source);
  await new Promise((resolve) => source.addEventListener("sourceopen", resolve, { once: true }));
  const buffer = source.addSourceBuffer("audio/mpeg");
  const reader = response.body.getReader();
  let first = true;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    await append(buffer, value);
    if (first) {
      first = false;
      onFirst();
      audio.play().catch(() => {}); // a browser that wants a gesture first leaves the controls to the visitor
    }
  }
  source.endOfStream();
}

// The finished job's stored file, through the API (pcm as WAV, which a browser can play).
export async function finished(audio, job) {
  const query = job.format === "pcm" ? "?format=wav" : "";
  audio.src = URL.createObjectURL(await blob(`/v1/jobs/${job.id}/stream${query}`));
  audio.play().catch(() => {});
}

export async function waitFinal(jobId, signal, onUpdate) {
  for (;;) {
    const job = await call(`/v1/jobs/${jobId}`, { signal });
    onUpdate(job);
    if (job.status === "succeeded" || job.status === "failed") return job;
    await new Promise((resolve) => setTimeout(resolve, 300));
  }
}

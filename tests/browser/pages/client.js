// What a frontend does against the mock from another origin: start a job with an Authorization
// header (a preflighted request), read its stream with fetch + ReadableStream, survive a dropped
// connection by resuming with `after`, answer an approval; and read a public share-token stream
// with a native EventSource. The browser tests call these functions with page.evaluate.
"use strict";

const TERMINAL = new Set(["complete", "error"]);

function show(id, data) {
  const item = document.createElement("li");
  item.dataset.id = id || "";
  item.dataset.type = data.type;
  item.textContent = JSON.stringify(data);
  document.getElementById("events").append(item);
  if (data.type === "state_update") {
    document.getElementById("status").textContent = data.status;
    document.getElementById("bar").value = data.progress;
  }
}

// Reads one connection until the job's terminal entry, `stopAfter` events (then aborts: a forced
// disconnect), or the end of the response. Yields [{id, data}].
async function readStream(url, headers, onEvent, stopAfter) {
  const controller = new AbortController();
  const response = await fetch(url, { headers, signal: controller.signal });
  if (!response.ok) throw new Error(`stream: ${response.status}`);
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  let count = 0;
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return { ended: true };
      buffer += value;
      let cut;
      while ((cut = buffer.indexOf("\n\n")) >= 0) {
        const block = buffer.slice(0, cut);
        buffer = buffer.slice(cut + 2);
        let id = null;
        let data = null;
        for (const line of block.split("\n")) {
          if (line.startsWith("id: ")) id = line.slice(4);
          else if (line.startsWith("data: ")) data = JSON.parse(line.slice(6));
        }
        if (data === null) continue; // a keepalive comment
        count += 1;
        await onEvent(id, data);
        if (TERMINAL.has(data.type)) {
          controller.abort();
          return { ended: true };
        }
        if (stopAfter !== null && count >= stopAfter) {
          controller.abort();
          return { ended: false };
        }
      }
    }
  } catch (error) {
    if (error.name === "AbortError") return { ended: false };
    throw error;
  }
}

// Starts a job that waits for an approval, drops the stream after `dropAfter` events, resumes
// with ?after=<last id>, approves when asked, and reads to the end.
window.startAndFollow = async function (base, key, pathway, dropAfter) {
  const auth = { Authorization: `Bearer ${key}` };
  const started = await fetch(`${base}/auvy/v1/jobs`, {
    method: "POST",
    headers: { ...auth, "Content-Type": "application/json" },
    body: JSON.stringify({ pathway_id: pathway }),
  });
  if (!started.ok) throw new Error(`start: ${started.status}`);
  const { job_id: jobId } = await started.json();
  const seen = [];
  let lastId = null;
  let approved = false;
  const onEvent = async (id, data) => {
    seen.push({ id, data });
    lastId = id;
    show(id, data);
    const waiting = data.type === "state_update" && data.waitingFor;
    if (waiting && !approved) {
      approved = true;
      const answer = await fetch(`${base}/auvy/v1/interventions/${waiting.interventionId}/respond`, {
        method: "POST",
        headers: { ...auth, "Content-Type": "application/json" },
        body: JSON.stringify({ action: "approve" }),
      });
      if (!answer.ok) throw new Error(`respond: ${answer.status}`);
    }
  };
  const url = `${base}/auvy/v1/jobs/${jobId}/stream`;
  const first = await readStream(url, auth, onEvent, dropAfter);
  const droppedAt = seen.length;
  const resumedFrom = lastId;
  let connections = 1;
  let ended = first.ended;
  while (!ended) {
    connections += 1;
    const next = await readStream(`${url}?after=${encodeURIComponent(lastId)}`, auth, onEvent, null);
    ended = next.ended;
  }
  return { jobId, events: seen, droppedAt, resumedFrom, connections };
};

// A public share link: start a job on the receptor and read its stream with EventSource.
window.publicEventSource = async function (base, token, workspace, receptor) {
  const started = await fetch(`${base}/auvy/v1/public/receptors/${workspace}/${receptor}/execute`, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ share_token: token, message: "Hello from another origin" }),
  });
  if (!started.ok) throw new Error(`execute: ${started.status}`);
  const { job_id: jobId } = await started.json();
  const url = `${base}/auvy/v1/public/jobs/${jobId}/stream?t=${encodeURIComponent(token)}`;
  const events = await new Promise((resolve, reject) => {
    const seen = [];
    const source = new EventSource(url);
    source.onmessage = (message) => {
      const data = JSON.parse(message.data);
      seen.push({ id: message.lastEventId, data });
      show(message.lastEventId, data);
      // Close on the terminal entry: left open, EventSource would reconnect and replay.
      if (TERMINAL.has(data.type)) {
        source.close();
        resolve(seen);
      }
    };
    source.onerror = () => {
      source.close();
      reject(new Error(`EventSource failed after ${seen.length} events`));
    };
  });
  return { jobId, events };
};

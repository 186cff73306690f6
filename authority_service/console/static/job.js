// The job's page: follow its state and progress until it ends, then show the final page.
"use strict";

document.addEventListener("DOMContentLoaded", () => {
  const root = document.getElementById("job");
  const status = document.getElementById("job-status");
  const bar = document.getElementById("job-progress");
  const percent = document.getElementById("job-percent");
  const frames = document.getElementById("job-frames");
  const error = document.getElementById("job-error");
  const waiting = ["pending_approval", "queued", "running"];
  if (!waiting.includes(root.dataset.status)) return;

  async function poll() {
    let response;
    try {
      response = await fetch(root.dataset.stateUrl, { headers: { Accept: "application/json" } });
    } catch (e) {
      Console.say(error, "The service cannot be reached; retrying.");
      window.setTimeout(poll, 2000);
      return;
    }
    if (Console.signInAgain(response)) return;
    if (!response.ok) {
      Console.say(error, await Console.errorText(response));
      return;
    }
    Console.say(error, "");
    const job = await response.json();
    const total = job.progress.frames_total;
    const done = job.progress.frames_done;
    const value = job.status === "succeeded" ? 100 : total ? Math.floor((done * 100) / total) : 0;
    bar.value = value;
    percent.textContent = `${value} %`;
    frames.textContent = total ? `${done} / ${total} frames` : `${done} frames`;
    status.textContent = job.status.replace("_", " ");
    status.className = `state state-${job.status}`;
    if (waiting.includes(job.status)) {
      window.setTimeout(poll, job.status === "pending_approval" ? 2000 : 400);
    } else {
      root.dataset.status = job.status;
      window.setTimeout(() => window.location.reload(), 600); // the final page: report, links
    }
  }
  poll();
});

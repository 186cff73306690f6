// New reversal request: upload the clip with its progress, then open the job's page.
"use strict";

document.addEventListener("DOMContentLoaded", () => {
  const form = document.getElementById("request-form");
  const box = document.getElementById("upload-box");
  const bar = document.getElementById("upload-progress");
  const percent = document.getElementById("upload-percent");
  const error = document.getElementById("request-error");
  const button = document.getElementById("submit-request");

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    Console.say(error, "");
    button.disabled = true;
    box.hidden = false;
    const show = (fraction) => {
      const value = Math.round(fraction * 100);
      bar.value = value;
      percent.textContent = `${value} %`;
    };
    show(0);
    try {
      const response = await Console.send(form.action, new FormData(form), show);
      if (response.status === 202) {
        show(1);
        const job = await response.json();
        window.location.assign(form.dataset.jobUrl + job.id);
        return;
      }
      if (Console.signInAgain(response)) return;
      Console.say(error, await Console.errorText(response));
    } catch (e) {
      Console.say(error, `The upload failed: ${e.message}.`);
    }
    box.hidden = true;
    button.disabled = false;
  });
});

// Single frame: the server cuts the picked frame out exactly; then only that frame is reversed.
"use strict";

document.addEventListener("DOMContentLoaded", () => {
  const form = document.getElementById("frame-form");
  const clip = document.getElementById("frame-clip");
  const index = document.getElementById("frame-index");
  const showButton = document.getElementById("show-frame");
  const reverseButton = document.getElementById("reverse-frame");
  const publicImage = document.getElementById("frame-public");
  const reversedImage = document.getElementById("frame-reversed");
  const error = document.getElementById("frame-error");
  const info = document.getElementById("frame-info");
  let publicPng = null;

  function shown(image, blob) {
    if (image.src.startsWith("blob:")) URL.revokeObjectURL(image.src);
    image.src = URL.createObjectURL(blob);
    image.hidden = false;
  }

  showButton.addEventListener("click", async () => {
    Console.say(error, "");
    Console.say(info, "");
    if (!clip.files.length) {
      Console.say(error, "Choose the recorded public clip first.");
      return;
    }
    const body = new FormData();
    body.append("clip", clip.files[0]);
    body.append("frame", index.value);
    showButton.disabled = true;
    try {
      const response = await Console.send(form.dataset.extract, body);
      if (Console.signInAgain(response)) return;
      if (response.status !== 200) {
        Console.say(error, await Console.errorText(response));
        return;
      }
      publicPng = await response.blob();
      shown(publicImage, publicPng);
      reversedImage.hidden = true;
      reverseButton.disabled = false;
      const total = response.header("X-Uunet-Frames");
      Console.say(info, `Frame ${index.value}${total ? ` of ${total}` : ""}: the public frame.`);
    } catch (e) {
      Console.say(error, `The clip could not be sent: ${e.message}.`);
    } finally {
      showButton.disabled = false;
    }
  });

  index.addEventListener("change", () => {
    reverseButton.disabled = true; // show the newly picked frame before reversing it
  });

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    Console.say(error, "");
    if (!publicPng) return;
    const body = new FormData();
    body.append("frame", new File([publicPng], `frame-${index.value}.png`, { type: "image/png" }));
    body.append("case_id", document.getElementById("frame-case").value);
    body.append("justification", document.getElementById("frame-justification").value);
    reverseButton.disabled = true;
    try {
      const response = await Console.send(form.dataset.reverse, body);
      if (Console.signInAgain(response)) return;
      if (response.status === 200) {
        shown(reversedImage, await response.blob());
        const h = (name) => response.header(`X-Uunet-${name}`) || "0";
        Console.say(
          info,
          `${h("Faces")} faces reversed: ${h("Faces-Sealed")} sealed (exact), ${h("Faces-Ud")} by the model; ` +
            `message ${h("Verified") === "true" ? "verified" : "NOT verified"}; audit record #${h("Audit-Seq")}.`,
        );
      } else if (response.status === 202) {
        const job = await response.json();
        Console.say(info, `The frame waits for an approver: job ${job.id}. Opening its page…`);
        window.setTimeout(() => window.location.assign(form.dataset.jobUrl + job.id), 1200);
      } else {
        Console.say(error, await Console.errorText(response));
      }
    } catch (e) {
      Console.say(error, `The frame could not be sent: ${e.message}.`);
    } finally {
      reverseButton.disabled = false;
    }
  });
});

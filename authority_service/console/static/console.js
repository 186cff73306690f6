// Shared by every console page: the CSRF token, JSON requests and readable error messages.
"use strict";

const Console = (() => {
  function csrf() {
    const meta = document.querySelector('meta[name="csrf-token"]');
    return meta ? meta.content : "";
  }

  // A sentence and the stable code, from the API's JSON error ({"error", "detail"}).
  async function errorText(response) {
    let body = null;
    try {
      body = await response.json();
    } catch (e) {
      body = null;
    }
    if (body && body.error) {
      return `${body.detail} (${body.error})`;
    }
    return `The service answered ${response.status} ${response.statusText}.`;
  }

  function say(element, text) {
    if (!element) return;
    element.textContent = text;
    element.hidden = !text;
  }

  // The session ended (expired, revoked): go to the sign-in page, which says why.
  function signInAgain(response) {
    if (response.status === 401) {
      window.location.reload();
      return true;
    }
    return false;
  }

  // POST a FormData with the CSRF header; onProgress(fraction) while the body uploads.
  // Resolves to {status, headers(name), json(), blob()} whatever the status.
  function send(url, form, onProgress) {
    return new Promise((resolve, reject) => {
      const xhr = new XMLHttpRequest();
      xhr.open("POST", url);
      xhr.responseType = "blob";
      xhr.setRequestHeader("X-CSRF-Token", csrf());
      xhr.setRequestHeader("Accept", "application/json, image/png");
      if (onProgress) {
        xhr.upload.addEventListener("progress", (event) => {
          if (event.lengthComputable) onProgress(event.loaded / event.total);
        });
      }
      xhr.addEventListener("load", () => {
        const blob = xhr.response;
        resolve({
          status: xhr.status,
          statusText: xhr.statusText,
          header: (name) => xhr.getResponseHeader(name),
          blob: async () => blob,
          json: async () => JSON.parse(await blob.text()),
        });
      });
      xhr.addEventListener("error", () => reject(new Error("the service cannot be reached")));
      xhr.send(form);
    });
  }

  return { csrf, errorText, say, send, signInAgain };
})();

// The side-by-side player: the public clip leads, the reconstruction follows it frame by frame.
"use strict";

document.addEventListener("DOMContentLoaded", () => {
  const root = document.getElementById("player");
  const lead = document.getElementById("video-public");
  const follow = document.getElementById("video-result");
  const videos = [lead, follow];
  const overlays = [document.getElementById("overlay-public"), document.getElementById("overlay-result")];
  const play = document.getElementById("play");
  const back = document.getElementById("step-back");
  const forward = document.getElementById("step-forward");
  const seek = document.getElementById("seek");
  const position = document.getElementById("position");
  const showFaces = document.getElementById("show-faces");
  const legend = document.getElementById("face-legend");
  const variantSelect = document.getElementById("variant");
  const error = document.getElementById("player-error");

  const fps = parseFloat(root.dataset.fps) || 25;
  const frameCount = parseInt(root.dataset.frames, 10) || 1;
  const frameSeconds = 1 / fps;
  let faces = null; // the face overlay, fetched on demand
  let ready = 0;

  // Frame i is shown from i / fps; aim a quarter frame in, away from the boundary.
  const timeOf = (index) => (index + 0.25) / fps;
  const frameOf = (time) => Math.min(frameCount - 1, Math.max(0, Math.floor(time * fps + 1e-6)));

  // H.264 4:4:4 (High 4:4:4 Predictive) where the browser decodes it, else 4:2:0. (The RGB
  // preview is for tools: Chromium shows it in false colours.)
  function chooseVariant() {
    const probe = document.createElement("video");
    const full = probe.canPlayType('video/mp4; codecs="avc1.F4001F"') !== "";
    variantSelect.value = full ? "yuv444" : "yuv420";
  }

  function load() {
    ready = 0;
    const variant = variantSelect.value;
    lead.src = `${root.dataset.media}public.mp4?variant=${variant}`;
    follow.src = `${root.dataset.media}result.mp4?variant=${variant}`;
  }

  async function explain(video) {
    // A <video> does not say why it failed: ask once, for the error's sentence and code.
    try {
      const response = await fetch(video.currentSrc || video.src, {
        headers: { Accept: "application/json", Range: "bytes=0-0" },
      });
      if (Console.signInAgain(response)) return;
      if (!response.ok) {
        Console.say(error, await Console.errorText(response));
        return;
      }
    } catch (e) {
      /* fall through */
    }
    if (variantSelect.value !== "yuv420") {
      Console.say(error, "This browser cannot play the H.264 4:4:4 preview; switching to 4:2:0.");
      variantSelect.value = "yuv420";
      load();
    } else {
      Console.say(error, "This browser cannot play the preview (H.264 in MP4).");
    }
  }

  function enable(on) {
    for (const control of [play, back, forward, seek]) control.disabled = !on;
  }

  function update() {
    const index = frameOf(lead.currentTime);
    seek.value = String(index);
    position.textContent = `frame ${index} / ${frameCount} · ${lead.currentTime.toFixed(3)} s`;
    play.textContent = lead.paused ? "Play" : "Pause";
    draw(index);
  }

  // Keep the follower within a fraction of a frame of the leader while playing.
  function track() {
    if (!lead.paused && !follow.seeking) {
      const drift = follow.currentTime - lead.currentTime;
      if (Math.abs(drift) > frameSeconds) {
        follow.currentTime = lead.currentTime;
        follow.playbackRate = 1;
      } else if (Math.abs(drift) > frameSeconds / 4) {
        follow.playbackRate = drift > 0 ? 0.9 : 1.1;
      } else {
        follow.playbackRate = 1;
      }
    }
    update();
    if (!lead.paused) window.requestAnimationFrame(track);
  }

  function goTo(index) {
    const time = timeOf(Math.min(frameCount - 1, Math.max(0, index)));
    for (const video of videos) video.currentTime = time;
    update();
  }

  function pause() {
    for (const video of videos) video.pause();
    follow.currentTime = lead.currentTime;
    update();
  }

  async function start() {
    if (lead.ended || frameOf(lead.currentTime) >= frameCount - 1) goTo(0);
    follow.currentTime = lead.currentTime;
    try {
      await Promise.all(videos.map((video) => video.play()));
    } catch (e) {
      Console.say(error, `Playback did not start: ${e.message}`);
      return;
    }
    window.requestAnimationFrame(track);
  }

  function draw(index) {
    overlays.forEach((canvas, i) => {
      canvas.hidden = !showFaces.checked || !faces;
      if (canvas.hidden) return;
      const video = videos[i];
      const scale = window.devicePixelRatio || 1;
      canvas.width = Math.round(video.clientWidth * scale);
      canvas.height = Math.round(video.clientHeight * scale);
      const context = canvas.getContext("2d");
      context.clearRect(0, 0, canvas.width, canvas.height);
      const frame = faces.frames[index];
      if (!frame) return;
      const sx = canvas.width / (faces.width || video.videoWidth || 1);
      const sy = canvas.height / (faces.height || video.videoHeight || 1);
      context.lineWidth = 2 * scale;
      context.font = `${12 * scale}px sans-serif`;
      for (const box of frame.boxes) {
        const colour = box.method === "sealed" ? "#1b9e4b" : "#e8740c";
        const label = box.method === "sealed" ? `sealed (${box.codec})` : `ud (${box.reason})`;
        context.strokeStyle = colour;
        context.fillStyle = colour;
        context.strokeRect(box.x * sx, box.y * sy, box.w * sx, box.h * sy);
        context.fillText(label, box.x * sx + 2 * scale, Math.max(12 * scale, box.y * sy - 3 * scale));
      }
    });
  }

  async function loadFaces() {
    if (faces) return;
    const response = await fetch(root.dataset.faces, { headers: { Accept: "application/json" } });
    if (Console.signInAgain(response)) return;
    if (!response.ok) {
      Console.say(error, await Console.errorText(response));
      showFaces.checked = false;
      return;
    }
    faces = await response.json();
  }

  for (const video of videos) {
    video.addEventListener("loadeddata", () => {
      ready += 1;
      if (ready >= videos.length) {
        enable(true);
        update();
      }
    });
    video.addEventListener("error", () => explain(video));
  }
  lead.addEventListener("ended", pause);
  lead.addEventListener("seeked", update);
  play.addEventListener("click", () => (lead.paused ? start() : pause()));
  back.addEventListener("click", () => {
    pause();
    goTo(frameOf(lead.currentTime) - 1);
  });
  forward.addEventListener("click", () => {
    pause();
    goTo(frameOf(lead.currentTime) + 1);
  });
  seek.addEventListener("input", () => goTo(parseInt(seek.value, 10)));
  showFaces.addEventListener("change", async () => {
    legend.hidden = !showFaces.checked;
    if (showFaces.checked) await loadFaces();
    update();
  });
  variantSelect.addEventListener("change", () => {
    Console.say(error, "");
    enable(false);
    load();
  });
  window.addEventListener("resize", update);

  chooseVariant();
  load();
});

// The clinic page: upload or capture a film, show the answer, keep this session's results in memory.
// No external requests; the access cookie (if any) is HttpOnly and sent by the browser itself.
"use strict";

(function () {
  const $ = (id) => document.getElementById(id);
  const maxBytes = Number(document.body.dataset.maxUploadBytes);
  const recent = []; // this page's results only: never stored anywhere
  const RECENT_MAX = 20;
  let busy = false;

  function setStatus(text, kind) {
    $("status").textContent = text;
    $("status").classList.toggle("error", kind === "error");
    $("status").classList.toggle("working", kind === "working");
  }

  // The answer on screen always belongs to the film named in it: it goes the moment
  // another film is sent, and an error (any status, with the server's reason) takes its place.
  function clearResult() {
    $("result").hidden = true;
    $("label").textContent = "";
    $("filename").textContent = "";
    $("probability").textContent = "";
    PneumoHeatmap.clear($("heatmap"));
  }

  function refuse(text) {
    clearResult();
    setStatus(text, "error");
  }

  // `file` is the uploaded film (the overlay is drawn on it), or null for a camera capture.
  async function send(url, body, name, file) {
    if (busy) return;
    busy = true;
    $("capture").disabled = true;
    clearResult();
    setStatus("Scoring " + name + "…", "working");
    const started = performance.now();
    try {
      const response = await fetch(url, { method: "POST", body: body, credentials: "same-origin" });
      const text = await response.text();
      let data;
      try { data = JSON.parse(text); } catch (e) { data = { error: text || response.statusText }; }
      if (!response.ok) {
        refuse(name + " was not scored (" + response.status + "): " + (data.error || response.statusText));
        return;
      }
      await show(data, name, file, performance.now() - started);
      const scope = data.scope || {};
      setStatus(scope.in_scope === false ? "Out of scope, scored only because the server allows it: " +
                scope.reason + ". Do not rely on this answer." : "", scope.in_scope === false ? "error" : "");
    } catch (err) {
      refuse("The device did not answer for " + name + ": " + err.message);
    } finally {
      busy = false;
      $("capture").disabled = false;
    }
  }

  function upload(file) {
    if (!file) return;
    if (file.size > maxBytes) {
      refuse(file.name + " is " + (file.size / 1048576).toFixed(1) + " MB, over the " +
             (maxBytes / 1048576).toFixed(1) + " MB limit.");
      return;
    }
    const form = new FormData();
    form.append("file", file, file.name);
    send("/api/predict", form, file.name, file);
  }

  async function show(r, name, file, roundTripMs) {
    const flagged = r.probability >= r.threshold;
    $("result").hidden = false;
    $("label").textContent = r.label;
    $("label").className = "label " + (flagged ? "flagged" : "normal");
    $("filename").textContent = name;
    $("bar").classList.toggle("flagged", flagged);
    $("bar").setAttribute("aria-valuenow", String(r.probability));
    $("bar-fill").style.width = (100 * r.probability).toFixed(1) + "%";
    $("bar-threshold").style.left = (100 * r.threshold).toFixed(1) + "%";
    $("probability").textContent = r.probability.toFixed(3);
    $("threshold").textContent = r.threshold.toFixed(3);
    $("time").textContent = Math.round(roundTripMs) + " ms (" + Math.round(r.timings_ms.server) +
                            " ms on the device)";
    $("result-model").textContent = r.model;
    const thumbnail = await drawHeatmap(r.heatmap, file);
    remember(r, name, thumbnail);
  }

  // The overlay on the canvas, its legend and caption; returns a thumbnail of it, or null.
  async function drawHeatmap(heatmap, file) {
    const canvas = $("heatmap");
    $("heatmap-figure").hidden = !heatmap;
    if (!heatmap) {
      $("heatmap-caption").textContent = "This model gives no heatmap.";
      return null;
    }
    const started = performance.now();
    try {
      PneumoHeatmap.draw(canvas, await PneumoHeatmap.picture(heatmap, file), heatmap);
    } catch (err) {
      PneumoHeatmap.clear(canvas);
      $("heatmap-caption").textContent = "This browser could not draw the heatmap: " + err.message;
      return null;
    }
    PneumoHeatmap.legend($("legend"), heatmap);
    [$("legend-low").textContent, $("legend-middle").textContent, $("legend-high").textContent] = heatmap.legend;
    $("heatmap-caption").textContent = "Warm colours mark the regions that pointed to pneumonia (drawn here in " +
                                       Math.round(performance.now() - started) + " ms).";
    return PneumoHeatmap.thumbnail(canvas, 96);
  }

  function remember(r, name, thumbnail) {
    recent.unshift({ r: r, name: name, thumbnail: thumbnail, when: new Date() });
    recent.length = Math.min(recent.length, RECENT_MAX);
    const list = $("recent");
    list.replaceChildren();
    for (const item of recent) {
      const li = document.createElement("li");
      if (item.thumbnail) {
        const img = document.createElement("img");
        img.src = item.thumbnail;
        img.alt = "";
        li.append(img);
      }
      const what = document.createElement("span");
      what.className = "what";
      what.textContent = item.r.label + " " + item.r.probability.toFixed(3) + " · " + item.name;
      const when = document.createElement("span");
      when.className = "when";
      when.textContent = item.when.toLocaleTimeString();
      li.append(what, when);
      list.append(li);
    }
  }

  const zone = $("dropzone");
  zone.addEventListener("dragover", (e) => { e.preventDefault(); zone.classList.add("over"); });
  zone.addEventListener("dragleave", () => zone.classList.remove("over"));
  zone.addEventListener("drop", (e) => {
    e.preventDefault();
    zone.classList.remove("over");
    const files = e.dataTransfer && e.dataTransfer.files;
    if (files && files.length) upload(files[0]);
  });
  // A film dropped beside the zone must not make the browser navigate away from the page.
  window.addEventListener("dragover", (e) => e.preventDefault());
  window.addEventListener("drop", (e) => e.preventDefault());

  $("file").addEventListener("change", (e) => {
    upload(e.target.files[0]);
    e.target.value = "";
  });

  $("capture").addEventListener("click", () => send("/api/capture", null, "camera capture", null));

  fetch("/api/health", { credentials: "same-origin" })
    .then((response) => (response.ok ? response.json() : null))
    .then((health) => { $("capture").hidden = !(health && health.camera); })
    .catch(() => { $("capture").hidden = true; });
})();

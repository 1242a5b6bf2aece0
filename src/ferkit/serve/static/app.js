// ferkit browser app: upload a photo or video, or stream the webcam, to this server's API.
"use strict";
const $ = (id) => document.getElementById(id);
const COLORS = ["#d62728", "#8c564b", "#9467bd", "#2ca02c", "#1f77b4", "#ff7f0e", "#7f7f7f",
                "#e377c2"];

function headers() {
  const key = $("api-key").value;
  return key ? { "X-API-Key": key } : {};
}

function query(extra) {
  const p = new URLSearchParams();
  if ($("model").value) p.set("model", $("model").value);
  p.set("tta", $("tta").checked ? "true" : "false");
  if ($("blur").checked) p.set("blur", "true");
  if ($("abstain").value) p.set("abstain", "prob:" + $("abstain").value);
  for (const [k, v] of Object.entries(extra || {})) p.set(k, v);
  return "?" + p.toString();
}

async function api(path, opts) {
  const res = await fetch(path, { ...opts, headers: { ...headers(), ...(opts || {}).headers } });
  if (!res.ok) {
    let msg = res.status + " " + res.statusText;
    try { msg = (await res.json()).error.message; } catch (e) { /* not JSON */ }
    throw new Error(msg);
  }
  return res;
}

function status(text, isError) {
  $("status").textContent = text;
  $("status").className = isError ? "error" : "";
}

function fillTable(faces) {
  const body = $("results-table").querySelector("tbody");
  body.innerHTML = "";
  faces.forEach((f, i) => {
    const tr = document.createElement("tr");
    tr.className = "face-row";
    const probs = Object.entries(f.probs).sort((a, b) => b[1] - a[1])
      .map(([c, p]) => `<span>${c} <i class="bar" style="width:${Math.round(p * 60)}px"></i> ` +
                       `${(100 * p).toFixed(1)}%</span>`).join("");
    tr.innerHTML = `<td>${f.track_id ?? i + 1}</td><td>${f.label}</td>` +
      `<td>${(100 * f.confidence).toFixed(1)}%</td><td class="probs">${probs}</td>`;
    body.appendChild(tr);
  });
}

async function analyzePhoto(file) {
  const form = () => { const fd = new FormData(); fd.append("file", file); return fd; };
  const json = await (await api("/v1/analyze" + query(), { method: "POST", body: form() })).json();
  const img = await (await api("/v1/analyze" + query({ annotate: "1" }),
                               { method: "POST", body: form() })).blob();
  $("annotated").src = URL.createObjectURL(img);
  $("annotated").hidden = false;
  $("timeline").innerHTML = "";
  fillTable(json.faces);
  $("result").hidden = false;
  status(`${json.faces.length} face(s) found by ${json.model}`);
}

function parseCsv(text) {
  const lines = text.trim().split("\n");
  const head = lines.shift().split(",");
  return lines.map((l) => Object.fromEntries(l.split(",").map((v, i) => [head[i], v])));
}

function drawTimeline(rows) {
  const W = 900, H = 260, L = 40, B = 30;
  const classes = Object.keys(rows[0] || {}).filter((k) => k.startsWith("share_"));
  const tMax = Math.max(1, ...rows.map((r) => +r.t_start_s));
  const x = (t) => L + (W - L - 10) * t / tMax, y = (v) => H - B - (H - B - 10) * v;
  let svg = `<svg id="timeline-svg" viewBox="0 0 ${W} ${H}" width="100%">` +
    `<line x1="${L}" y1="${y(0)}" x2="${W - 10}" y2="${y(0)}" stroke="#888"/>` +
    `<line x1="${L}" y1="${y(0)}" x2="${L}" y2="${y(1)}" stroke="#888"/>` +
    `<text x="${W / 2}" y="${H - 5}">time (s)</text><text x="2" y="${y(1) + 4}">100%</text>`;
  classes.forEach((c, i) => {
    const pts = rows.filter((r) => r[c] !== "").map((r) => `${x(+r.t_start_s)},${y(+r[c])}`);
    svg += `<polyline fill="none" stroke="${COLORS[i % COLORS.length]}" stroke-width="2" ` +
           `points="${pts.join(" ")}"/>` +
           `<text x="${L + 10 + i * 105}" y="14" fill="${COLORS[i % COLORS.length]}">` +
           `${c.slice(6)}</text>`;
  });
  $("timeline").innerHTML = "<h3>Share of faces per emotion over time</h3>" + svg + "</svg>";
}

async function analyzeVideo(file) {
  const fd = new FormData(); fd.append("file", file);
  const job = await (await api("/v1/jobs" + query(), { method: "POST", body: fd })).json();
  $("job-progress").hidden = false;
  for (;;) {
    await new Promise((r) => setTimeout(r, 500));
    const s = await (await api(job.status_url)).json();
    $("job-progress").value = s.progress || 0;
    status(`video job ${s.status}: ${s.frames_done} of ${s.frames_total ?? "?"} frames`);
    if (s.status === "failed") throw new Error(s.error);
    if (s.status === "done") break;
  }
  $("job-progress").hidden = true;
  const tl = await (await api(job.result_url + "?format=timeline")).text();
  const rows = parseCsv(tl);
  drawTimeline(rows);
  const faces = (await (await api(job.result_url + "?format=jsonl")).text()).trim()
    .split("\n").filter(Boolean).map((l) => JSON.parse(l));
  fillTable(faces.slice(-20));
  $("annotated").hidden = true;
  $("downloads").innerHTML = ["jsonl", "csv", "timeline", "tracks"].map(
    (f) => `<a href="${job.result_url}?format=${f}" download>${f}</a>`).join(" · ");
  $("result").hidden = false;
  status(`${faces.length} face rows over ${rows.length} s of video (the table shows the last 20)`);
}

$("upload-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const file = $("file").files[0];
  if (!file) return;
  status("analysing " + file.name + " …");
  try {
    if (file.type.startsWith("video/")) await analyzeVideo(file);
    else await analyzePhoto(file);
  } catch (e) {
    status(e.message, true);
  }
});

// --- webcam: frames go to the server one at a time, nothing is stored ---------------------
let camStream = null, camBusy = false, camTimer = null;

async function camTick() {
  const video = $("cam");
  if (camBusy || !video.videoWidth) return;
  camBusy = true;
  const grab = document.createElement("canvas");
  grab.width = video.videoWidth; grab.height = video.videoHeight;
  grab.getContext("2d").drawImage(video, 0, 0);
  const t0 = performance.now();
  try {
    const blob = await new Promise((r) => grab.toBlob(r, "image/jpeg", 0.8));
    const fd = new FormData(); fd.append("file", blob, "frame.jpg");
    const json = await (await api("/v1/analyze" + query(), { method: "POST", body: fd })).json();
    drawOverlay(json.faces, grab.width, grab.height);
    $("cam-fps").textContent = `${(1000 / (performance.now() - t0)).toFixed(1)} frames/s`;
  } catch (e) {
    $("cam-fps").textContent = e.message;
  } finally {
    camBusy = false;
  }
}

function drawOverlay(faces, w, h) {
  const c = $("cam-overlay"), v = $("cam");
  c.width = v.clientWidth; c.height = v.clientHeight;
  const sx = c.width / w, sy = c.height / h, g = c.getContext("2d");
  g.clearRect(0, 0, c.width, c.height);
  g.lineWidth = 2; g.font = "16px sans-serif";
  for (const f of faces) {
    g.strokeStyle = g.fillStyle = "#2ca02c";
    g.strokeRect(f.x * sx, f.y * sy, f.w * sx, f.h * sy);
    g.fillText(`${f.label} ${(100 * f.confidence).toFixed(0)}%`, f.x * sx, f.y * sy - 4);
  }
}

$("cam-start").addEventListener("click", async () => {
  try {
    camStream = await navigator.mediaDevices.getUserMedia({ video: true, audio: false });
  } catch (e) {
    $("cam-fps").textContent = "no webcam: " + e.message;
    return;
  }
  $("cam").srcObject = camStream;
  camTimer = setInterval(camTick, 150);
  $("cam-start").disabled = true; $("cam-stop").disabled = false;
});

$("cam-stop").addEventListener("click", () => {
  clearInterval(camTimer);
  if (camStream) camStream.getTracks().forEach((t) => t.stop());
  camStream = null;
  $("cam-start").disabled = false; $("cam-stop").disabled = true;
});

for (const [tab, pane] of [["tab-upload", "upload-pane"], ["tab-webcam", "webcam-pane"]]) {
  $(tab).addEventListener("click", () => {
    document.querySelectorAll(".tab").forEach((t) => t.classList.remove("active"));
    $(tab).classList.add("active");
    $("upload-pane").hidden = pane !== "upload-pane";
    $("webcam-pane").hidden = pane !== "webcam-pane";
  });
}

(async function init() {
  const health = await (await fetch("/health")).json();
  $("key-label").hidden = !health.auth;
  try {
    const models = await (await api("/v1/models")).json();
    for (const m of models) {
      const o = document.createElement("option");
      o.value = m.name;
      const acc = m.val_accuracy ? `, val ${(100 * m.val_accuracy).toFixed(1)}%` : "";
      o.textContent = `${m.name} (${m.classes.length} classes${acc})`;
      o.selected = m.name === health.default_model;
      $("model").appendChild(o);
    }
  } catch (e) {
    status("enter the API key to load the models", true);
  }
})();

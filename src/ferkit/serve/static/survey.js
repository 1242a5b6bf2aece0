// Survey page: the participant id lives in localStorage, so a reload resumes.
"use strict";
const $ = (id) => document.getElementById(id);
const KEY = "ferkit-survey-participant";
let current = null, shownAt = 0;

async function call(path, opts) {
  const res = await fetch(path, opts);
  if (!res.ok) {
    let msg = res.status + "";
    try { msg = (await res.json()).error.message; } catch (e) { /* not JSON */ }
    const err = new Error(msg); err.status = res.status; throw err;
  }
  return res.json();
}

function show(state) {
  current = state;
  localStorage.setItem(KEY, state.participant);
  $("progress-text").textContent = `Face ${Math.min(state.answered + 1, state.total)} of ${state.total}`;
  if (state.done) {
    $("face").hidden = true; $("choices").hidden = true; $("skip").hidden = true;
    $("done").hidden = false;
    return;
  }
  if (!$("choices").children.length) {
    for (const c of state.classes) {
      const b = document.createElement("button");
      b.type = "button"; b.textContent = c; b.dataset.label = c; b.className = "choice";
      b.addEventListener("click", () => answer(c));
      $("choices").appendChild(b);
    }
  }
  $("face").src = `/survey/faces/${state.face_id}`;
  $("face").dataset.faceId = state.face_id;
  shownAt = performance.now();
}

async function answer(label) {
  if (!current || current.done) return;
  try {
    show(await call("/survey/api/answers", {
      method: "POST", headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ participant: current.participant, face_id: current.face_id,
                             answer: label, ms: Math.round(performance.now() - shownAt) }),
    }));
  } catch (e) {
    $("error").textContent = e.message;
  }
}

$("skip").addEventListener("click", () => answer(null));

(async function start() {
  const pid = localStorage.getItem(KEY);
  try {
    if (pid) { show(await call(`/survey/api/participants/${pid}/next`)); return; }
  } catch (e) {
    if (e.status !== 404) { $("error").textContent = e.message; return; }
  }
  show(await call("/survey/api/participants", { method: "POST" }));
})();

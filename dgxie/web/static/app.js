// dgxie dashboard: confirmations for actions, and live updates from the page's event stream.
// No framework, no build step; served by dgxie itself (docs/dashboard.md).
"use strict";

document.addEventListener("submit", (e) => {
  const form = e.target;
  const question = form.dataset && form.dataset.confirm;
  if (question && !window.confirm(question)) e.preventDefault();
});

function applyEvent(ev) {
  if (!ev.node) return;
  const row = document.querySelector(`tr[data-node="${CSS.escape(ev.node)}"]`);
  if (ev.to_state) {
    if (row) {
      const cell = row.querySelector('[data-field="state"]');
      cell.textContent = ev.to_state;
      cell.className = `state s-${ev.to_state}`;
      row.classList.add("changed");
    }
    const title = document.querySelector("[data-node-state]");
    if (title) { title.textContent = ev.to_state; title.className = `state s-${ev.to_state}`; }
    for (const [state, delta] of [[ev.from_state, -1], [ev.to_state, 1]]) {
      const c = state && document.querySelector(`[data-count-state="${CSS.escape(state)}"]`);
      if (c) c.textContent = String(Number(c.textContent) + delta);
    }
  }
  const timeline = document.getElementById("timeline");
  if (timeline) {
    const li = document.createElement("li");
    const when = document.createElement("time");
    when.dateTime = ev.time;
    when.textContent = ev.time.replace("T", " ").slice(0, 19);
    const kind = document.createElement("span");
    kind.className = "kind";
    kind.textContent = ev.kind;
    li.append(when, " ", kind, " ");
    if (ev.to_state) {
      const st = document.createElement("span");
      st.className = `state s-${ev.to_state}`;
      st.textContent = `${ev.from_state || ""} → ${ev.to_state}`;
      li.append(st, " ");
    }
    li.append(`${ev.reason} `);
    const actor = document.createElement("span");
    actor.className = "actor";
    actor.textContent = ev.actor;
    li.append(actor);
    timeline.prepend(li);
  }
}

function live() {
  const url = document.body.dataset.stream;
  const status = document.getElementById("live");
  if (!url || !window.EventSource) return;
  const source = new EventSource(url);
  source.onopen = () => { status.textContent = "live"; status.className = "live on"; };
  source.onerror = () => { status.textContent = "reconnecting…"; status.className = "live off"; };
  source.onmessage = (m) => {
    const ev = JSON.parse(m.data);
    applyEvent(ev);
    status.textContent = `live · ${ev.node || ""} ${ev.kind}`;
  };
}

live();

// Mirrors page: poll each queued or running job once a second (at most an hour) until it ends,
// then reload the page for its new snapshot.
for (const el of document.querySelectorAll("[data-job]")) {
  if (!["queued", "running"].includes(el.dataset.status)) continue;
  let polls = 0;
  const tick = async () => {
    if (++polls > 3600) return;
    const r = await fetch(el.dataset.job, {cache: "no-store"});
    if (!r.ok) return;
    const j = await r.json();
    if (!j) return;
    el.querySelector('[data-field="status"]').textContent = `#${j.id} ${j.status} (${j.phase})`;
    el.querySelector('[data-field="files"]').textContent = `${j.files_done}/${j.files_total} files`;
    const bar = el.querySelector("progress");
    bar.max = j.bytes_total || 1;
    bar.value = j.bytes_done;
    if (["queued", "running"].includes(j.status)) setTimeout(tick, 1000);
    else window.location.href = window.location.pathname;  // without the flash message of the sync
  };
  setTimeout(tick, 1000);
}

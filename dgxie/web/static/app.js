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

// A queued or running job (mirror sync, firmware rollout): poll its JSON once a second (at most an
// hour), show it in place, and when it ends load `reloadTo` (the page again, without a flash message).
const LIVE_JOB = ["queued", "running"];
function follow(el, url, show, reloadTo) {
  if (!LIVE_JOB.includes(el.dataset.status)) return;
  let polls = 0;
  const tick = async () => {
    if (++polls > 3600) return;
    const r = await fetch(url, {cache: "no-store"});
    if (!r.ok) return;
    const j = await r.json();
    if (!j) return;
    show(j);
    if (LIVE_JOB.includes(j.status)) setTimeout(tick, 1000);
    else window.location.href = reloadTo;
  };
  setTimeout(tick, 1000);
}

// Mirrors page: each mirror's job, then the page again for its new snapshot.
for (const el of document.querySelectorAll("[data-job]")) {
  follow(el, el.dataset.job, (j) => {
    el.querySelector('[data-field="status"]').textContent = `#${j.id} ${j.status} (${j.phase})`;
    el.querySelector('[data-field="files"]').textContent = `${j.files_done}/${j.files_total} files`;
    const bar = el.querySelector("progress");
    bar.max = j.bytes_total || 1;
    bar.value = j.bytes_done;
  }, window.location.pathname);
}

// Firmware rollout page: the job's status and counts, and each node row of the page.
const when = (t) => (t ? t.replace("T", " ").slice(0, 19) : "—");
for (const el of document.querySelectorAll("[data-rollout]")) {
  follow(el, el.dataset.rollout, (j) => {
    const cancelling = j.cancel_requested && j.status === "running" ? " (cancel requested)" : "";
    el.querySelector('[data-field="job-status"]').textContent = j.status + cancelling;
    const counts = Object.keys(j.counts).sort().map((k) => `${k} ${j.counts[k]}`);
    el.querySelector('[data-field="counts"]').textContent = counts.join(", ") || "none";
    for (const n of j.nodes) {
      const row = document.querySelector(`tr[data-update-node="${CSS.escape(n.node)}"]`);
      if (!row) continue;
      const fields = {wave: n.wave || "—", status: n.status, task_state: n.task_state || "", message: n.message,
                      percent: n.percent === null ? "" : `${n.percent}%`, started_at: when(n.started_at),
                      finished_at: when(n.finished_at)};
      for (const [name, value] of Object.entries(fields)) {
        row.querySelector(`[data-field="${name}"]`).textContent = String(value);
      }
      row.querySelector('[data-field="status"]').className = `state u-${n.status}`;
      row.querySelector("progress").value = n.percent || 0;
    }
  }, window.location.pathname + window.location.search);
}

// The policy playground: plain DOM, no framework, nothing loaded from elsewhere.
"use strict";

const API = "/playground/api";
const $ = (id) => document.getElementById(id);
let examples = [];

function text(tag, content, attrs) {
  const el = document.createElement(tag);
  if (content !== undefined) el.textContent = content;
  for (const [k, v] of Object.entries(attrs || {})) el.setAttribute(k, v);
  return el;
}

// A file shown with line numbers; each line is addressable by file and number.
function codeView(name, body) {
  const box = text("div", undefined, { class: "file", "data-file": name });
  box.appendChild(text("h3", name));
  const pre = text("pre", undefined, { class: "code", tabindex: "0",
                                       "aria-label": `${name}, with line numbers` });
  body.split("\n").forEach((line, i) => {
    pre.appendChild(text("span", line || " ", {
      class: "ln", "data-line": String(i + 1), id: `L-${name}-${i + 1}` }));
  });
  box.appendChild(pre);
  return box;
}

function source() {
  return document.querySelector("input[name=source]:checked").value;
}

function showSource() {
  const scratch = source() === "scratch";
  $("served-view").hidden = scratch;
  $("scratch-view").hidden = !scratch;
}

function fillExamples() {
  const select = $("example");
  examples.forEach((example, i) => {
    select.appendChild(text("option", `${example.file}: ${example.name}`, { value: String(i) }));
  });
}

async function loadServed() {
  try {
    const response = await fetch(`${API}/set`);
    const set = await response.json();
    if (!response.ok) throw new Error(set.message || response.statusText);
    $("served-name").textContent = `${set.directory} (version ${set.version})`;
    const files = $("served-files");
    files.replaceChildren(...set.files.map((f) => codeView(f.name, f.text)));
    $("served-status").textContent = `${set.files.length} file(s), ` +
      `${set.examples.length} example request(s) from its tests.`;
    examples = set.examples;
    fillExamples();
  } catch (err) {
    $("served-status").textContent = `Could not load the served policy set: ${err.message}`;
  }
}

function curlFor(request) {
  const body = JSON.stringify(request).replaceAll("'", "'\\''");
  const lines = [];
  if (source() === "scratch") lines.push("# asks the served policy set, not the scratch one");
  lines.push(`curl -s ${window.location.origin}/access/v1/evaluation \\`,
             "  -H 'Content-Type: application/json' -H 'X-PDP-Explain: true' \\",
             `  -d '${body}'`);
  return lines.join("\n");
}

function list(id, items, empty) {
  const ul = $(id);
  ul.replaceChildren(...(items.length ? items : [text("li", empty)]));
}

function clearHighlights() {
  document.querySelectorAll(".ln.hit").forEach((el) => el.classList.remove("hit", "forbid",
                                                                          "permit"));
}

function highlight(policy) {
  const container = source() === "scratch" ? $("scratch-files") : $("served-files");
  const file = [...container.querySelectorAll(".file")]
    .find((f) => f.dataset.file === policy.file);
  if (!file || !policy.line) return null;
  let first = null;
  for (let n = policy.line; n <= (policy.end_line || policy.line); n++) {
    const line = file.querySelector(`.ln[data-line="${n}"]`);
    if (!line) break;
    line.classList.add("hit", policy.effect === "forbid" ? "forbid" : "permit");
    first = first || line;
  }
  return first;
}

function showInvalid(title, messages) {
  clearHighlights();
  const decision = $("decision");
  decision.className = "invalid";
  decision.textContent = title;
  list("determining", [], "none");
  list("errors", messages.map((m) => text("li", m)), "none");
  $("entities").textContent = "[]";
}

function showAnswer(answer, request) {
  const decision = $("decision");
  decision.className = answer.decision ? "permit" : "deny";
  decision.textContent = `Decision: ${answer.decision ? "permit" : "deny"} (${answer.outcome})`;
  clearHighlights();
  let first = null;
  const items = answer.policies.map((p) => {
    const li = text("li");
    const where = p.file ? `${p.file}:${p.line}` : "(location unknown)";
    li.appendChild(text("strong", p.id));
    li.appendChild(document.createTextNode(` (${p.effect || "policy"}) at `));
    li.appendChild(p.file ? text("a", where, { href: `#L-${p.file}-${p.line}` })
                          : text("span", where));
    first = highlight(p) || first;
    return li;
  });
  list("determining", items, "none (no policy permitted it)");
  const errors = [...answer.errors];
  if (answer.error) errors.unshift(answer.error.message || JSON.stringify(answer.error));
  list("errors", errors.map((e) => text("li", e)), "none");
  $("entities").textContent = answer.entities.length === 0 ? "[]" :  // one entity a line
    `[\n${answer.entities.map((e) => `  ${JSON.stringify(e)}`).join(",\n")}\n]`;
  if (first) first.scrollIntoView({ block: "center" });
}

async function decideNow() {
  let request;
  try {
    request = JSON.parse($("request").value);
  } catch (err) {
    showInvalid("Invalid request", [`The request is not valid JSON: ${err.message}`]);
    return;
  }
  $("curl").textContent = curlFor(request);
  const body = { request };
  if (source() === "scratch") {
    body.scratch = { policies: $("scratch-policies").value, schema: $("scratch-schema").value,
                     entities: $("scratch-entities").value };
    $("scratch-files").replaceChildren(codeView("scratch.cedar", body.scratch.policies));
  }
  $("decision").className = "";
  $("decision").textContent = "Deciding…";
  try {
    const response = await fetch(`${API}/decide`, {
      method: "POST", headers: { "Content-Type": "application/json" },
      body: JSON.stringify(body) });
    const answer = await response.json();
    if (!response.ok) {
      const messages = (answer.diagnostics || []).map(
        (d) => `${d.file}:${d.line ?? "?"}:${d.column ?? "?"}: ${d.message}`);
      const field = answer.field ? ` (${answer.field})` : "";
      messages.unshift(`${answer.error}: ${answer.message}${field}`);
      showInvalid(answer.diagnostics ? "Invalid policy set" : "Invalid request", messages);
      return;
    }
    showAnswer(answer, request);
  } catch (err) {
    showInvalid("No answer", [`The PDP did not answer: ${err.message}`]);
  }
}

document.addEventListener("DOMContentLoaded", () => {
  document.querySelectorAll("input[name=source]").forEach(
    (radio) => radio.addEventListener("change", showSource));
  $("example").addEventListener("change", (event) => {
    const example = examples[Number(event.target.value)];
    if (example) $("request").value = JSON.stringify(example.request, null, 2);
  });
  $("decide").addEventListener("click", decideNow);
  $("curl").textContent = curlFor(JSON.parse($("request").value));
  loadServed();
});

// The live page of `influrec serve` (GET /ui): plain JavaScript, no framework, no build step.
// Every answer comes from the service's own /v1 API, called with the read key typed on the
// page. The key lives in one variable of this script only: nothing is written to storage.
"use strict";

const state = {
  key: null,            // the read key, in memory only
  usersAfter: null,     // `next_after` of the last page of users
  user: null,
  explained: null,      // the /explanations answer for the user
  itemRank: null,       // rank of the item whose effects colour the history
  off: new Set(),       // positions of the events switched off
  titles: new Map(),    // item id -> title, from every answer seen
  userRequest: 0,       // the latest user asked for; answers to older requests are dropped
  whatIfRequest: 0,     // the latest what-if asked for; likewise
  usersRequest: 0,      // the latest page of users asked for; likewise
};

const $ = (id) => document.getElementById(id);

// -- talking to the API ----------------------------------------------------------------------

class Problem extends Error {}

function plainWords(status, body) {
  const said = body && body.error ? body.error.message : "";
  if (status === 401) return "The read key was refused. Check it and connect again.";
  if (status === 403) return "This key may not read: it lacks the read scope.";
  if (status === 413) return "The request was too large for the service.";
  if (status === 422) {
    const details = body && body.error ? body.error.details.map((d) => d.message) : [];
    const words = [...new Set([said, ...details])].filter(Boolean).join("; ");
    return `The service could not use this request: ${words}`;
  }
  if (status === 404) return `Not found: ${said || "the service does not know this address"}.`;
  return `The service failed (HTTP ${status})${said ? ": " + said : ""}.`;
}

async function api(path, body) {
  const options = { headers: { Authorization: `Bearer ${state.key}` } };
  if (body !== undefined) {
    options.method = "POST";
    options.headers["Content-Type"] = "application/json";
    options.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(path, options);
  } catch (error) {
    throw new Problem("The service did not answer. Is influrec serve still running?");
  }
  const answer = await response.json().catch(() => null);
  if (!response.ok) throw new Problem(plainWords(response.status, answer));
  return answer;
}

function showError(error) {
  const box = $("error");
  box.textContent = error instanceof Problem ? error.message : `Something went wrong: ${error}`;
  box.hidden = false;
  setStatus("");
}

function clearError() {
  $("error").hidden = true;
  $("error").textContent = "";
}

function setStatus(text) {
  $("status").textContent = text;
  document.body.classList.toggle("busy", Boolean(text));
}

// -- words and numbers -----------------------------------------------------------------------

const dateFormat = new Intl.DateTimeFormat(undefined, {
  year: "numeric", month: "short", day: "numeric", hour: "2-digit", minute: "2-digit",
  hourCycle: "h23", timeZone: "UTC",
});

function readableDate(seconds) {  // the page says once that times are in UTC
  return dateFormat.format(new Date(seconds * 1000));
}

function remember(id, title) {
  if (title) state.titles.set(id, title);
}

function itemName(id) {
  return state.titles.get(id) || id;
}

function signed(value) {
  const size = Math.abs(value);
  let text = Number.isInteger(value) ? String(size) : size.toPrecision(size >= 1 ? 3 : 2);
  if (text.includes("e")) {  // 2.4e-7: written out, two significant digits
    text = size.toFixed(Math.min(20, 1 - Math.floor(Math.log10(size))));
  }
  return value > 0 ? `+${text}` : value < 0 ? `\u2212${text}` : "0";
}

function direction(effect) {
  if (effect > 0) return "pushes it up";
  if (effect < 0) return "pulls it down";
  return "no effect";
}

// Diverging colours: blue for events that push the item up, orange for those that pull it
// down, paler for smaller effects (white = none) on a square-root scale, so that effects ten
// times smaller than the largest still show. The sign is also written out in words.
const UP = [33, 102, 172];
const DOWN = [214, 96, 77];

function shade(effect, largest) {
  const strength = largest > 0 ? Math.sqrt(Math.min(1, Math.abs(effect) / largest)) : 0;
  const [r, g, b] = effect >= 0 ? UP : DOWN;
  const mix = (c) => Math.round(255 + (c - 255) * 0.5 * strength);
  return `rgb(${mix(r)}, ${mix(g)}, ${mix(b)})`;
}

function element(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

// -- users -----------------------------------------------------------------------------------

async function connect(event) {
  event.preventDefault();
  state.key = $("key").value.trim();
  clearError();
  setStatus("Connecting\u2026");
  try {
    const health = await fetch("/healthz").then((r) => r.json());
    $("run-info").textContent =
      `Serving the run \u201c${health.run}\u201d: ${health.users} users, ${health.items} items, ` +
      `${health.events_in_store} events received since training.`;
    await loadUsers(false);
    $("users").hidden = false;
    setStatus("");
    $("user-list").focus();
  } catch (error) {
    showError(error);
  }
}

async function loadUsers(more) {
  const params = new URLSearchParams({ limit: "100", prefix: $("user-filter").value.trim() });
  if (more && state.usersAfter) params.set("after", state.usersAfter);
  const request = ++state.usersRequest;
  const page = await api(`/v1/users?${params}`);
  if (request !== state.usersRequest) return;
  const list = $("user-list");
  if (!more) list.replaceChildren();
  for (const u of page.users) {
    const events = u.trained_events + u.stored_events;
    const option = element("option", "", `${u.user} \u00b7 ${events} events`);
    option.value = u.user;
    list.append(option);
  }
  state.usersAfter = page.next_after;
  $("more-users").hidden = !page.next_after;
  $("users-count").textContent = list.options.length
    ? `${list.options.length} users shown${page.next_after ? ", more exist" : ""}`
    : "No user id starts with this.";
}

let filterTimer = null;
function filterUsers() {
  clearTimeout(filterTimer);
  filterTimer = setTimeout(() => loadUsers(false).catch(showError), 250);
}

// -- one user --------------------------------------------------------------------------------

async function chooseUser() {
  const user = $("user-list").value;
  if (!user) return;
  const request = ++state.userRequest;
  const k = $("k").value;
  const measure = $("measure").value;
  clearError();
  setStatus(`Measuring the effect of each of ${user}'s events\u2026`);
  const path = `/v1/users/${encodeURIComponent(user)}`;
  try {
    const explained = await api(`${path}/explanations?k=${k}&measure=${measure}&method=loo`);
    if (request !== state.userRequest) return;
    state.whatIfRequest++;  // a what-if still on its way was about the previous view
    state.user = user;
    state.explained = explained;
    state.off.clear();
    state.itemRank = explained.recommendations.length ? 1 : null;
    for (const r of explained.recommendations) remember(r.item, r.title);
    renderUser();
    setStatus("");
    loadActions(path, request, k);
  } catch (error) {
    if (request === state.userRequest) showError(error);
  }
}

function renderUser() {
  const e = state.explained;
  $("user-view").hidden = false;
  $("user-heading").textContent = `User ${e.user}`;
  const h = e.history;
  let info = `${h.events_used} events in the history (${h.trained_events} from training, ` +
    `${h.stored_events} received since)` +
    (h.muted_events ? `; ${h.muted_events} muted by the user are left out.` : ".");
  if (e.cold_start) info += " No usable history: popular items are recommended, which no event explains.";
  else info += ` The model reads the ${e.events_explained} most recent; those are shown.`;
  $("history-info").textContent = info;
  renderRecs();
  renderHistory();
  renderWhatIf(null);
}

function renderRecs() {
  const list = $("recs");
  list.replaceChildren();
  for (const r of state.explained.recommendations) {
    const button = element("button", "item");
    button.type = "button";
    button.dataset.item = r.item;
    button.dataset.rank = String(r.rank);
    button.setAttribute("aria-pressed", String(r.rank === state.itemRank));
    button.append(element("span", "rank", `${r.rank}.`), element("span", "name", itemName(r.item)));
    button.addEventListener("click", () => {
      state.itemRank = r.rank;
      renderRecs();
      renderHistory();
    });
    const li = element("li");
    li.append(button);
    list.append(li);
  }
}

function chosenItem() {
  return state.explained.recommendations.find((r) => r.rank === state.itemRank) || null;
}

function renderHistory() {
  const item = chosenItem();
  const list = $("events");
  list.replaceChildren();
  $("legend").replaceChildren();
  $("sentence").textContent = "";
  $("reset").disabled = state.off.size === 0;
  if (!item) {
    $("history-heading").textContent = "History";
    $("sentence").textContent = state.explained.note || "";
    return;
  }
  $("history-heading").textContent = `History, coloured by the effect on ${itemName(item.item)}`;
  $("sentence").textContent = item.sentence || "";
  const largest = Math.max(0, ...item.events.map((e) => Math.abs(e.effect)));
  renderLegend(largest);
  const strongest = item.events.reduce((a, e) => (a === null || e.effect > a.effect ? e : a), null);
  for (const e of [...item.events].reverse()) {  // the newest first
    remember(e.item, e.title);
    const top = strongest && e === strongest && e.effect > 0;
    list.append(eventRow(e, largest, top));
  }
}

function eventRow(e, largest, top) {
  const off = state.off.has(e.position);
  const button = element("button", "event" + (off ? " off" : "") + (top ? " top-support" : ""));
  button.type = "button";
  button.dataset.position = String(e.position);
  button.dataset.effect = String(e.effect);
  button.setAttribute("aria-pressed", String(off));
  button.title = off ? "Switched off: click to switch it back on" : "Click to switch this event off";
  button.style.backgroundColor = off ? "" : shade(e.effect, largest);
  const words = element("span", "direction", direction(e.effect));
  const flag = off ? "switched off" : top ? "the strongest push" : "";
  if (flag) words.append(element("span", "state", flag));
  button.append(
    element("span", "name", itemName(e.item)),
    element("strong", "effect", signed(e.effect)),
    element("span", "meta", `${readableDate(e.timestamp)} \u00b7 ${e.behavior}`),
    words,
  );
  button.addEventListener("click", () => toggle(e.position));
  const li = element("li");
  li.append(button);
  return li;
}

function renderLegend(largest) {
  const legend = $("legend");
  const scale = element("div", "scale");
  scale.append(
    element("span", "down", `${signed(-largest)} pulls down`),
    element("span", "bar"),
    element("span", "up", `pushes up ${signed(largest)}`),
  );
  const unit = state.explained.unit ? `Effects in ${state.explained.unit}. ` : "";
  const note = "Deeper colour, larger effect (on a square-root scale).";
  legend.append(scale, element("p", "hint", unit + note));
}

// -- what if ---------------------------------------------------------------------------------

async function toggle(position) {
  if (state.off.has(position)) state.off.delete(position);
  else state.off.add(position);
  const focused = document.activeElement && document.activeElement.dataset.position;
  renderHistory();
  if (focused) {
    const again = $("events").querySelector(`button[data-position="${focused}"]`);
    if (again) again.focus();
  }
  await recompute();
}

async function recompute() {
  const request = ++state.whatIfRequest;
  const remove = [...state.off].sort((a, b) => a - b);
  if (!remove.length) {
    renderWhatIf(null);
    return;
  }
  clearError();
  setStatus("Recomputing the list without the events switched off\u2026");
  try {
    const k = state.explained.k;
    const answer = await api("/v1/whatif", { user: state.user, remove, k });
    if (request !== state.whatIfRequest) return;
    for (const [id, title] of Object.entries(answer.titles || {})) remember(id, title);
    renderWhatIf(answer, remove);
    setStatus("");
  } catch (error) {
    if (request === state.whatIfRequest) showError(error);
  }
}

function movement(change) {
  if (change.before > state.explained.k) return ["new", `new (was ranked ${change.before})`];
  const moved = change.before - change.after;
  if (moved > 0) return ["up", `\u25b2 ${moved} (was ${change.before})`];
  if (moved < 0) return ["down", `\u25bc ${-moved} (was ${change.before})`];
  return ["same", "same place"];
}

function renderWhatIf(answer, remove) {
  const list = $("after");
  list.replaceChildren();
  $("dropped").textContent = "";
  list.dataset.removed = remove ? remove.join(",") : "";
  if (!answer) {
    $("whatif-summary").textContent = "Every event is on: the list is the one recommended now.";
    return;
  }
  const changed = answer.after.filter((id, i) => answer.before[i] !== id).length;
  $("whatif-summary").textContent =
    `${remove.length} event${remove.length > 1 ? "s" : ""} off: ` +
    (changed ? `${changed} of ${answer.k} places change.` : "the list stays the same.");
  for (const id of answer.after) {
    const [kind, words] = movement(answer.rank_changes[id]);
    const li = element("li", `moved-${kind}`);
    li.dataset.item = id;
    li.append(element("span", "name", itemName(id)), element("span", "move", words));
    list.append(li);
  }
  const gone = answer.before.filter((id) => !answer.after.includes(id));
  if (gone.length) {
    const words = gone.map((id) => `${itemName(id)} (now ranked ${answer.rank_changes[id].after})`);
    $("dropped").textContent = `Left the list: ${words.join(", ")}.`;
  }
}

// -- next actions ----------------------------------------------------------------------------

async function loadActions(path, request, k) {
  $("actions").hidden = true;
  $("actions-status").textContent = "Trying next actions\u2026";
  try {
    const answer = await api(`${path}/influential-actions?k=${k}&candidates=50&top=5`);
    if (request !== state.userRequest) return;
    const body = $("actions").querySelector("tbody");
    body.replaceChildren();
    for (const a of answer.actions) {
      remember(a.item, a.title);
      const row = element("tr");
      row.append(
        element("td", "", `${a.behavior} ${itemName(a.item)}`),
        element("td", "", `${Math.round(a.churn * 100)}%`),
        element("td", "", a.new_top.slice(0, 3).map(itemName).join(", ")),
      );
      body.append(row);
    }
    $("actions").hidden = answer.actions.length === 0;
    $("actions-status").textContent = answer.actions.length
      ? `Of ${answer.candidates} actions tried (the top items \u00d7 each behaviour):`
      : "No action tried changes the list.";
  } catch (error) {
    if (request === state.userRequest) $("actions-status").textContent = error.message;
  }
}

// -- wiring ----------------------------------------------------------------------------------

document.addEventListener("DOMContentLoaded", () => {
  $("key-form").addEventListener("submit", connect);
  $("user-filter").addEventListener("input", filterUsers);
  $("more-users").addEventListener("click", () => loadUsers(true).catch(showError));
  $("user-list").addEventListener("change", chooseUser);
  $("k").addEventListener("change", chooseUser);
  $("measure").addEventListener("change", chooseUser);
  $("reset").addEventListener("click", () => {
    state.off.clear();
    renderHistory();
    recompute();
  });
});

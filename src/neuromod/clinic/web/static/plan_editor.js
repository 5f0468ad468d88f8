// The plan editor: injections charted on the face map (SVG in millimetres, y flipped: see
// clinic/web/face_chart.py), evaluated live by POST /api/patients/{id}/evaluate and saved by
// POST /api/patients/{id}/plans. Pointer events, so a mouse, a pen and a finger all work.
import { api } from "./app.js";

const EVALUATE_DELAY_MS = 120; // debounce: one request per burst of edits
const DRAG_THRESHOLD_MM = 1.0; // a standard-site point becomes a free point once moved this far

const config = JSON.parse(document.getElementById("editor-data").textContent);
const svg = document.getElementById("face-chart");
const layer = svg.querySelector("g.injections");
const $ = (id) => document.getElementById(id);

const state = { product: $("product").value, vialUnits: null, salineMl: null, injections: [], selected: null };
let nextId = 0; // injection ids
let evaluationSerial = 0; // answers to older requests are dropped
let timer = null;
let inFlight = null;

function productInfo() { return config.products[state.product]; }
function unitsPerMl() {
  const info = productInfo();
  return (state.vialUnits || info.vial_units) / (state.salineMl || info.label_saline_ml);
}
function round(value, step) { return Math.round(value / step) * step; }
function fmt(value, digits = 1) { return value === null || value === undefined ? "—" : Number(value).toFixed(digits).replace(/\.0+$/, ""); }

function toMm(event) {
  const point = svg.createSVGPoint();
  point.x = event.clientX; point.y = event.clientY;
  const local = point.matrixTransform(svg.getScreenCTM().inverse());
  return { x: round(local.x, 0.5), y: round(-local.y, 0.5) };
}

function addInjection(injection) {
  state.injections.push({ id: ++nextId, ...injection });
  select(state.injections[state.injections.length - 1].id);
  changed();
}

function addAtSite(circle) {
  const site = circle.dataset.site;
  const existing = state.injections.find((i) => i.site === site);
  if (existing) { select(existing.id); return; }
  const ona = config.site_default_ona_units[site];
  addInjection({ site, x_mm: Number(circle.dataset.x), y_mm: Number(circle.dataset.y),
                 depth_mm: Number(circle.dataset.depth),
                 units: round(ona * productInfo().units_per_ona_unit, 0.5) || 0.5 });
}

function addFreePoint(event) {
  const { x, y } = toMm(event);
  addInjection({ site: null, x_mm: x, y_mm: y, depth_mm: config.default_depth_mm,
                 units: round(config.free_point_ona_units * productInfo().units_per_ona_unit, 0.5) });
}

function select(id) {
  state.selected = id;
  const injection = state.injections.find((i) => i.id === id);
  $("selected").hidden = !injection;
  if (injection) {
    $("selected-title").textContent = `Point ${state.injections.indexOf(injection) + 1}: ${where(injection)}`;
    $("sel-units").value = fmt(injection.units, 2);
    $("sel-volume").value = (injection.units / unitsPerMl()).toFixed(3);
    $("sel-depth").value = injection.depth_mm;
    $("sel-units").max = productInfo().max_units_per_site;
  }
  draw();
}

function where(injection) {
  return injection.site ? injection.site.replaceAll("_", " ") : `x ${injection.x_mm} mm, y ${injection.y_mm} mm`;
}

function draw() {
  layer.replaceChildren();
  const tbody = $("injection-list").querySelector("tbody");
  tbody.replaceChildren();
  state.injections.forEach((injection, index) => {
    const group = document.createElementNS("http://www.w3.org/2000/svg", "g");
    group.setAttribute("class", "injection" + (injection.id === state.selected ? " selected" : "") + (injection.site ? " at-site" : " free"));
    group.dataset.id = injection.id;
    const circle = document.createElementNS("http://www.w3.org/2000/svg", "circle");
    circle.setAttribute("cx", injection.x_mm); circle.setAttribute("cy", -injection.y_mm);
    circle.setAttribute("r", (2.2 + 0.7 * Math.sqrt(injection.units)).toFixed(2));
    const label = document.createElementNS("http://www.w3.org/2000/svg", "text");
    label.setAttribute("x", injection.x_mm); label.setAttribute("y", -injection.y_mm + 1.3);
    label.setAttribute("text-anchor", "middle"); label.textContent = String(index + 1);
    group.append(circle, label);
    layer.append(group);
    const row = document.createElement("tr");
    row.dataset.id = injection.id;
    if (injection.id === state.selected) row.className = "selected";
    row.innerHTML = `<td>${index + 1}</td><td></td><td>${fmt(injection.units, 2)}</td><td>${(injection.units / unitsPerMl()).toFixed(3)}</td>`;
    row.children[1].textContent = where(injection);
    row.addEventListener("click", () => select(injection.id));
    tbody.append(row);
  });
  const perMl = unitsPerMl();
  $("dilution").textContent = `${fmt(perMl, 1)} U/mL`;
}

// -- pointer handling: click a site or the face to add; drag a point to move it ----------------
let drag = null;
let justDragged = false; // the click that ends a drag adds nothing
svg.addEventListener("pointerdown", (event) => {
  justDragged = false;
  const marker = event.target.closest("g.injection");
  if (marker) {
    const injection = state.injections.find((i) => i.id === Number(marker.dataset.id));
    select(injection.id);
    const start = toMm(event);
    drag = { injection, start, moved: false, pointerId: event.pointerId };
    svg.setPointerCapture(event.pointerId);
    event.preventDefault();
  }
});
svg.addEventListener("pointermove", (event) => {
  if (!drag || event.pointerId !== drag.pointerId) return;
  const now = toMm(event);
  const distance = Math.hypot(now.x - drag.start.x, now.y - drag.start.y);
  if (!drag.moved && distance < DRAG_THRESHOLD_MM) return;
  drag.moved = true;
  drag.injection.site = null; // moved off its standard site: now a free point
  drag.injection.x_mm = now.x; drag.injection.y_mm = now.y;
  draw();
});
function endDrag(event) {
  if (!drag || event.pointerId !== drag.pointerId) return;
  const moved = drag.moved;
  drag = null;
  justDragged = moved;
  if (moved) { select(state.selected); changed(); }
}
svg.addEventListener("pointerup", endDrag);
svg.addEventListener("pointercancel", endDrag);
svg.addEventListener("click", (event) => {
  if (justDragged) { justDragged = false; return; }
  if (event.target.closest("g.injection")) return;
  const site = event.target.closest("circle.site");
  if (site) addAtSite(site);
  else addFreePoint(event);
});

// -- the selected point's fields -----------------------------------------------------------
function selected() { return state.injections.find((i) => i.id === state.selected); }
$("sel-units").addEventListener("input", () => {
  const injection = selected(); const value = Number($("sel-units").value);
  if (!injection || !(value > 0)) return;
  injection.units = value; $("sel-volume").value = (value / unitsPerMl()).toFixed(3); draw(); changed();
});
$("sel-volume").addEventListener("input", () => {
  const injection = selected(); const value = Number($("sel-volume").value);
  if (!injection || !(value > 0)) return;
  injection.units = round(value * unitsPerMl(), 0.01); $("sel-units").value = fmt(injection.units, 2); draw(); changed();
});
$("sel-depth").addEventListener("input", () => {
  const injection = selected(); const value = Number($("sel-depth").value);
  if (!injection || !(value > 0)) return;
  injection.depth_mm = value; changed();
});
$("sel-remove").addEventListener("click", () => {
  state.injections = state.injections.filter((i) => i.id !== state.selected);
  select(null); changed();
});
$("product").addEventListener("change", () => {
  state.product = $("product").value;
  $("vial-units").placeholder = productInfo().vial_units;
  $("saline-ml").placeholder = productInfo().label_saline_ml;
  draw(); changed();
});
$("vial-units").addEventListener("input", () => { state.vialUnits = Number($("vial-units").value) || null; draw(); changed(); });
$("saline-ml").addEventListener("input", () => { state.salineMl = Number($("saline-ml").value) || null; draw(); changed(); });

// -- evaluation -----------------------------------------------------------------------------
function planDocument() {
  const plan = { product: state.product, injections: state.injections.map((i) => (i.site
    ? { site: i.site, units: i.units, depth_mm: i.depth_mm }
    : { x_mm: i.x_mm, y_mm: i.y_mm, units: i.units, depth_mm: i.depth_mm })) };
  if (state.vialUnits) plan.vial_units = state.vialUnits;
  if (state.salineMl) plan.saline_ml = state.salineMl;
  return plan;
}
function requestBody() {
  const body = { plan: planDocument() };
  if (config.consultation_id) body.consultation_id = config.consultation_id;
  if ($("planned-for").value) body.planned_for = $("planned-for").value;
  return body;
}

function changed() {
  clearTimeout(timer);
  $("save-plan").disabled = true;
  if (!state.injections.length) { $("eval-status").textContent = "Add injections to see the prediction."; return; }
  $("eval-status").textContent = "Updating…";
  timer = setTimeout(evaluate, EVALUATE_DELAY_MS);
}

async function evaluate() {
  const mine = ++evaluationSerial;
  if (inFlight) inFlight.abort();
  inFlight = new AbortController();
  const started = performance.now();
  try {
    const response = await fetch(`/api/patients/${config.patient_id}/evaluate`, {
      method: "POST", credentials: "same-origin", signal: inFlight.signal,
      headers: { "Content-Type": "application/json", "X-CSRF-Token": document.querySelector('meta[name="csrf-token"]').content },
      body: JSON.stringify(requestBody()),
    });
    const answer = await response.json();
    if (mine !== evaluationSerial) return; // a newer edit is on its way
    if (!response.ok) {
      $("eval-error").textContent = answer.detail || `${response.status}`;
      $("eval-status").textContent = "The plan breaks a rule: fix it to see the prediction.";
      return;
    }
    $("eval-error").textContent = "";
    show(answer);
    $("eval-status").textContent = `Updated in ${Math.round(performance.now() - started)} ms.`;
    $("eval-status").dataset.evaluations = String(Number($("eval-status").dataset.evaluations || 0) + 1);
    $("save-plan").disabled = false;
  } catch (failure) {
    if (failure.name !== "AbortError") $("eval-error").textContent = failure.message;
  }
}

function rows(tbody, items, cells) {
  tbody.replaceChildren();
  for (const item of items) {
    const row = document.createElement("tr");
    for (const cell of cells(item)) {
      const td = document.createElement("td"); td.textContent = cell; row.append(td);
    }
    tbody.append(row);
  }
  return tbody;
}

function show(answer) {
  $("total-units").textContent = fmt(answer.total_units, 2);
  $("total-product").textContent = answer.product;
  rows($("area-totals").querySelector("tbody"), answer.areas,
       (a) => [a.area === "custom" ? "free points" : a.area.replaceAll("_", " "), `${fmt(a.units, 2)} U`, `${a.points} point${a.points === 1 ? "" : "s"}`]);
  rows($("ptosis").querySelector("tbody"), answer.ptosis,
       (p) => [p.event.replaceAll("_", " "), `${fmt(p.risk_pct, 1)} %`, p.rule]);
  $("ptosis").querySelectorAll("tr").forEach((tr, i) => { tr.dataset.event = answer.ptosis[i].event; });
  rows($("conversions").querySelector("tbody"), answer.conversions,
       (c) => [c.product, fmt(c.units, 1), `${fmt(c.low, 1)}–${fmt(c.high, 1)}`]);
  const limits = answer.limits;
  const list = $("limits"); list.replaceChildren();
  for (const text of [`at most ${fmt(limits.max_units_per_site, 1)} U per site`,
                      `at most ${fmt(limits.max_session_units, 0)} U per session (this plan: ${fmt(answer.total_units, 1)} U)`,
                      `repeat no sooner than ${fmt(limits.min_retreat_days, 0)} days`,
                      `label glabella dose ${fmt(limits.label_glabella_units, 0)} U`]) {
    const li = document.createElement("li"); li.textContent = text; list.append(li);
  }
  rows($("muscles").querySelector("tbody"), answer.muscles,
       (m) => [m.muscle.replaceAll("_", " ") + (m.danger ? ` ⚠ ${m.danger.replaceAll("_", " ")}` : ""), `${fmt(m.units, 2)} U`]);
  $("lost").textContent = `${fmt(answer.lost_units, 2)} U reach no muscle (fat, dermis, vessels).`;
  $("course").innerHTML = answer.course_svg; // drawn by the server from the model's course
  rows($("landmarks").querySelector("tbody"), answer.landmarks,
       (l) => [l.area.replaceAll("_", " "), l.onset_day === null ? "—" : `day ${fmt(l.onset_day, 0)}`,
               l.peak_day === null ? "—" : `day ${fmt(l.peak_day, 0)}`,
               l.wear_off_day === null ? "beyond the horizon" : `day ${fmt(l.wear_off_day, 0)}`,
               l.residual_expression_at_peak === null ? "—" : `${fmt(100 * l.residual_expression_at_peak, 0)} %`]);
  $("editor-disclaimer").textContent = answer.disclaimer;
}

$("save-plan").addEventListener("click", async () => {
  $("save-error").textContent = "";
  $("save-plan").disabled = true;
  try {
    const body = requestBody();
    body.notes = $("plan-notes").value;
    await api("POST", `/api/patients/${config.patient_id}/plans`, body);
    window.location.assign(`/patients/${config.patient_id}`);
  } catch (failure) {
    $("save-error").textContent = failure.message;
    $("save-plan").disabled = false;
  }
});

$("vial-units").placeholder = productInfo().vial_units;
$("saline-ml").placeholder = productInfo().label_saline_ml;
draw();

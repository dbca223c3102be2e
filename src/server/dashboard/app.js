// The dashboard: plain JavaScript over the admin API, no framework.
//
// The token lives in sessionStorage for this tab only and travels as an
// `Authorization: Bearer` header; the page never puts it in a URL and sets
// no cookies. Data is written with textContent only, never as HTML.
"use strict";

(function () {
  const TOKEN_KEY = "streambus-tenancy.token";
  const POLL_MS = 1000;
  const RATES = [
    ["bytes_per_second", "max_bytes_per_second", "Bytes/s"],
    ["messages_per_second", "max_messages_per_second", "Messages/s"],
    ["requests_per_second", "max_requests_per_second", "Requests/s"],
  ];
  const HELD = [
    ["connections", "max_connections", "connections"],
    ["producers", "max_producers", "producers"],
    ["consumers", "max_consumers", "consumers"],
    ["consumer_groups", "max_consumer_groups", "groups"],
    ["topics", "max_topics", "topics"],
    ["partitions", "max_partitions", "partitions"],
    ["storage_bytes", "max_storage_bytes", "storage bytes"],
  ];
  // The quota fields, in the server's order: the keys of a tenant's
  // `quotas` (every answer carries them all), set by the quota form.
  let QUOTAS = [];

  const $ = (id) => document.getElementById(id);
  const el = (tag, props, ...children) => {
    const e = document.createElement(tag);
    if (props) {
      for (const [k, v] of Object.entries(props)) {
        if (k === "text") e.textContent = v;
        else if (k === "class") e.className = v;
        else if (k === "dataset") Object.assign(e.dataset, v);
        else e.setAttribute(k, v);
      }
    }
    for (const c of children) if (c) e.append(c);
    return e;
  };

  const state = {
    token: sessionStorage.getItem(TOKEN_KEY),
    role: null,
    cursors: [null], // `after` of each page seen, for Previous
    page: 0,
    rows: [], // [{tenant, stats, refusalsPerSec}]
    prevRefused: new Map(), // id -> {total, at}
    sort: { key: "id", dir: 1 },
    timer: null,
    seq: 0,
    total: 0,
    next: null,
  };

  // The tenant whose quota form is shown (its inputs are kept while the
  // operator types; the live numbers around them update).
  let shownTenant = null;

  class ApiError extends Error {
    constructor(status, body) {
      super((body && body.error) || "HTTP " + status);
      this.status = status;
      this.code = body && body.code;
    }
  }

  async function api(method, path, body) {
    const headers = { Authorization: "Bearer " + state.token, Accept: "application/json" };
    const init = { method, headers, credentials: "omit", cache: "no-store" };
    if (body !== undefined) {
      headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    const resp = await fetch(path, init);
    let json = null;
    const text = await resp.text();
    if (text) {
      try { json = JSON.parse(text); } catch (_) { json = { error: text }; }
    }
    if (!resp.ok) throw new ApiError(resp.status, json);
    return json;
  }

  // ---- sign in and out ----

  function authMessage(e) {
    if (e.status === 401) {
      return "The server refused this token (401: " + e.message + "). Check the token and sign in again.";
    }
    return "Could not reach the API: " + e.message;
  }

  async function signIn(token) {
    state.token = token;
    try {
      const me = await api("GET", "/api/v1/whoami");
      state.role = me.role;
      sessionStorage.setItem(TOKEN_KEY, token);
      $("whoami").textContent = "Signed in as " + me.name + " (" + me.role + ")";
      $("whoami").hidden = false;
      $("signout").hidden = false;
      document.body.classList.toggle("read-only", me.role !== "admin");
      $("login").hidden = true;
      $("login-error").textContent = "";
      route();
    } catch (e) {
      signOut(authMessage(e));
    }
  }

  function signOut(message) {
    sessionStorage.removeItem(TOKEN_KEY);
    state.token = null;
    state.role = null;
    clearTimeout(state.timer);
    // Forget what the last token saw, and any answer still on its way.
    state.seq += 1;
    state.rows = [];
    state.prevRefused.clear();
    state.cursors = [null];
    state.page = 0;
    shownTenant = null;
    $("tenants").tBodies[0].replaceChildren();
    $("tenant-live").replaceChildren();
    $("tenant-meta").replaceChildren();
    $("tenant-actions").replaceChildren();
    $("quota-fields").replaceChildren();
    $("charts").replaceChildren();
    $("page-info").textContent = "";
    $("total").textContent = "";
    $("whoami").hidden = true;
    $("signout").hidden = true;
    $("overview").hidden = true;
    $("tenant").hidden = true;
    $("login").hidden = false;
    $("login-error").textContent = message || "";
    $("token").value = "";
    $("token").focus();
  }

  // ---- formatting ----

  function fmt(n) {
    if (n === -1) return "unlimited";
    if (Math.abs(n) >= 1e9) return (n / 1e9).toFixed(1) + "G";
    if (Math.abs(n) >= 1e6) return (n / 1e6).toFixed(1) + "M";
    if (Math.abs(n) >= 1e4) return (n / 1e3).toFixed(1) + "k";
    return String(Math.round(n * 10) / 10);
  }

  function percent(used, limit) {
    if (limit < 0) return 0;
    if (limit === 0) return used > 0 ? 100 : 0;
    return Math.min(100, (100 * used) / limit);
  }

  function bar(key, used, limit) {
    const p = percent(used, limit);
    const level = p >= 95 ? " crit" : p >= 80 ? " warn" : "";
    const fill = el("div", { class: "fill" });
    fill.style.width = p.toFixed(1) + "%";
    const label = fmt(used) + " / " + fmt(limit) + (limit >= 0 ? " (" + Math.round(p) + "%)" : "");
    return el("div", { class: "bar rate-" + key + level, dataset: { percent: p.toFixed(1) } },
      el("div", {
        class: "track", role: "img",
        "aria-label": key.replace(/_/g, " ") + ": " + label,
      }, fill),
      el("span", { class: "value", text: label }));
  }

  function shortQuota(name) {
    const rate = { bytes_per_second: "bytes/s", messages_per_second: "messages/s", requests_per_second: "requests/s" };
    return rate[name] || name.replace(/_/g, " ");
  }

  function refusedTotal(stats) {
    const c = stats.counters;
    let sum = c.refused_not_active || 0;
    for (const v of Object.values(c.refused || {})) sum += v;
    return sum;
  }

  // ---- the overview ----

  function pageSize() { return Number($("page-size").value) || 50; }

  async function loadOverview() {
    const seq = ++state.seq;
    const after = state.cursors[state.page];
    let path = "/api/v1/tenants?limit=" + pageSize();
    if (after) path += "&after=" + encodeURIComponent(after);
    try {
      const list = await api("GET", path);
      const stats = await Promise.all(list.tenants.map((t) =>
        api("GET", "/api/v1/tenants/" + encodeURIComponent(t.id) + "/stats")
          .catch((e) => (e.status === 404 ? null : Promise.reject(e)))));
      if (seq !== state.seq) return;
      const now = performance.now();
      state.rows = [];
      stats.forEach((s) => {
        if (!s) return;
        const id = s.tenant.id;
        const total = refusedTotal(s);
        const prev = state.prevRefused.get(id);
        let rate = 0;
        if (prev && now > prev.at) rate = Math.max(0, ((total - prev.total) * 1000) / (now - prev.at));
        state.prevRefused.set(id, { total, at: now });
        state.rows.push({ tenant: s.tenant, stats: s, refusals: rate });
      });
      state.total = list.total;
      state.next = list.next;
      $("overview-error").textContent = "";
      renderOverview();
    } catch (e) {
      if (seq !== state.seq) return;
      if (e.status === 401) return signOut(authMessage(e));
      $("overview-error").textContent = "Update failed: " + e.message;
    }
  }

  function sortValue(row, key) {
    const s = row.stats;
    switch (key) {
      case "id": return row.tenant.id;
      case "name": return row.tenant.name.toLowerCase();
      case "status": return row.tenant.status;
      case "refusals": return row.refusals;
      case "alerts": return s.alerts.length;
      default: {
        const rate = RATES.find((r) => r[0] === key);
        return rate ? percent(s.usage[rate[0]], s.tenant.quotas[rate[1]]) : 0;
      }
    }
  }

  function visibleRows() {
    const idFilter = $("filter-id").value.trim().toLowerCase();
    const status = $("filter-status").value;
    const { key, dir } = state.sort;
    return state.rows
      .filter((r) => (!idFilter || r.tenant.id.toLowerCase().includes(idFilter))
        && (!status || r.tenant.status === status))
      .sort((a, b) => {
        const x = sortValue(a, key), y = sortValue(b, key);
        return (x < y ? -1 : x > y ? 1 : 0) * dir || (a.tenant.id < b.tenant.id ? -1 : 1);
      });
  }

  function actionButtons(tenant) {
    const frag = [];
    if (tenant.status === "active") {
      frag.push(el("button", { type: "button", class: "danger", "data-action": "suspend",
        "aria-label": "Suspend " + tenant.id, text: "Suspend" }));
    } else {
      frag.push(el("button", { type: "button", "data-action": "activate",
        "aria-label": "Activate " + tenant.id, text: "Activate" }));
    }
    frag.push(el("button", { type: "button", "data-action": "edit",
      "aria-label": "Edit quotas of " + tenant.id, text: "Edit" }));
    return frag;
  }

  function renderOverview() {
    const tbody = $("tenants").tBodies[0];
    const focused = document.activeElement;
    const focusKey = focused && focused.closest("tr")
      ? [focused.closest("tr").dataset.id, focused.dataset.action || "open"] : null;
    const rows = visibleRows().map((r) => {
      const t = r.tenant, s = r.stats;
      const tr = el("tr", { dataset: { id: t.id, status: t.status } });
      const cell = (label, cls, ...kids) =>
        tr.append(el("td", { "data-label": label, class: cls || "" }, el("div", { class: "cell" }, ...kids)));
      cell("Id", "id", el("button", { type: "button", "data-action": "open", text: t.id }));
      cell("Name", "name", document.createTextNode(t.name));
      cell("Status", "status status-" + t.status, document.createTextNode(t.status));
      for (const [u, q, label] of RATES) cell(label, "rate", bar(u, s.usage[u], t.quotas[q]));
      const held = el("div", { class: "held" });
      // Only what the tenant holds (or may not hold at all): the tenant
      // page lists every count.
      for (const [u, q, label] of HELD) {
        if (!s.usage[u] && t.quotas[q] !== 0) continue;
        const near = t.quotas[q] >= 0 && percent(s.usage[u], t.quotas[q]) >= 80;
        held.append(el("span", { class: near ? "near" : "", "data-quota": u,
          text: label + " " + fmt(s.usage[u]) + " / " + fmt(t.quotas[q]) }));
      }
      if (!held.childElementCount) held.textContent = "none held";
      cell("Held / limit", "", held);
      const hot = r.refusals > 0;
      cell("Refusals/s", "refusals" + (hot ? " hot" : ""), document.createTextNode(r.refusals.toFixed(1)));
      const alerts = el("div", { class: "alerts" });
      if (s.alerts.length === 0) alerts.textContent = "none";
      for (const a of s.alerts) {
        alerts.append(el("div", { class: "alert-" + a.level,
          text: a.level + " " + shortQuota(a.quota) + " " + Math.round(a.utilization) + "%" }));
      }
      cell("Alerts", "", alerts);
      if (state.role === "admin") cell("Actions", "actions admin-only", ...actionButtons(t));
      return tr;
    });
    tbody.replaceChildren(...rows);
    if (rows.length === 0) {
      tbody.append(el("tr", {}, el("td", { colspan: "10", text: state.rows.length ? "No tenant on this page matches the filters." : "No tenants." })));
    }
    if (focusKey) {
      const tr = tbody.querySelector("tr[data-id=\"" + CSS.escape(focusKey[0]) + "\"]");
      const again = tr && tr.querySelector("[data-action=\"" + focusKey[1] + "\"]");
      if (again) again.focus();
    }
    for (const th of $("tenants").tHead.rows[0].cells) {
      if (!th.dataset.sort) continue;
      if (th.dataset.sort === state.sort.key) th.setAttribute("aria-sort", state.sort.dir > 0 ? "ascending" : "descending");
      else th.removeAttribute("aria-sort");
    }
    const first = state.page * pageSize() + 1;
    $("total").textContent = "(" + state.total + " in all)";
    $("page-info").textContent = state.rows.length
      ? "Page " + (state.page + 1) + ": tenants " + first + "–" + (first + state.rows.length - 1) + " of " + state.total
      : "";
    $("prev").disabled = state.page === 0;
    $("next").disabled = !state.next;
    $("updated").textContent = "Last update " + new Date().toLocaleTimeString() + ".";
  }

  async function act(id, action) {
    try {
      await api("POST", "/api/v1/tenants/" + encodeURIComponent(id) + "/" + action);
      $("overview-error").textContent = "";
      $("tenant-error").textContent = "";
    } catch (e) {
      const msg = action + " " + id + " failed: " + e.message;
      if (!$("overview").hidden) $("overview-error").textContent = msg;
      else $("tenant-error").textContent = msg;
    }
    poll();
  }

  // ---- the tenant page ----

  function quotaForm(tenant) {
    const box = $("quota-fields");
    const admin = state.role === "admin";
    if (shownTenant === tenant.id && box.childElementCount) return;
    shownTenant = tenant.id;
    QUOTAS = Object.keys(tenant.quotas);
    box.replaceChildren(...QUOTAS.map((q) => {
      const input = el("input", { id: "q-" + q, name: q, type: "text", inputmode: "numeric",
        value: String(tenant.quotas[q]), "aria-describedby": "q-" + q + "-err" });
      if (!admin) input.readOnly = true;
      return el("div", {},
        el("label", { for: "q-" + q, text: q.replace(/^max_/, "").replace(/_/g, " ") }),
        input,
        el("p", { id: "q-" + q + "-err", class: "field-error" }));
    }));
    $("quota-error").textContent = "";
    $("quota-ok").textContent = "";
  }

  async function saveQuotas(ev) {
    ev.preventDefault();
    const id = shownTenant;
    const quotas = {};
    for (const q of QUOTAS) {
      const raw = $("q-" + q).value.trim();
      // Sent as typed when not an integer, so the server's message names it.
      quotas[q] = /^-?\d+$/.test(raw) ? Number(raw) : raw;
      $("q-" + q).removeAttribute("aria-invalid");
      $("q-" + q + "-err").textContent = "";
    }
    $("quota-error").textContent = "";
    $("quota-ok").textContent = "";
    try {
      const t = await api("PUT", "/api/v1/tenants/" + encodeURIComponent(id), { quotas });
      shownTenant = null;
      quotaForm(t);
      $("quota-ok").textContent = "Saved.";
    } catch (e) {
      $("quota-error").textContent = "Not saved: " + e.message;
      const field = QUOTAS.find((q) => e.message.includes(q));
      if (field) {
        $("q-" + field).setAttribute("aria-invalid", "true");
        $("q-" + field + "-err").textContent = e.message;
        $("q-" + field).focus();
      }
    }
  }

  const SVG = "http://www.w3.org/2000/svg";
  const SERIES = [
    ["bytes_per_second", "Bytes/s"],
    ["messages_per_second", "Messages/s"],
    ["requests_per_second", "Requests/s"],
    ["refusals_per_second", "Refusals/s"],
  ];

  // One line chart per series over the history's window, ending now.
  function charts(history) {
    const end = Date.now() / 1000;
    const start = end - history.window_seconds;
    return SERIES.map(([key, label]) => {
      const pts = history.points.filter((p) => p.at >= start);
      const max = pts.reduce((m, p) => Math.max(m, p[key]), 0);
      const last = pts.length ? pts[pts.length - 1][key] : null;
      const summary = label + ": " + (last === null ? "no samples yet"
        : "now " + fmt(last) + ", highest " + fmt(max) + " in " + pts.length + " samples");
      const svg = document.createElementNS(SVG, "svg");
      svg.setAttribute("viewBox", "0 0 900 100");
      svg.setAttribute("preserveAspectRatio", "none");
      svg.setAttribute("role", "img");
      svg.setAttribute("aria-label", summary);
      const line = document.createElementNS(SVG, "polyline");
      const top = max > 0 ? max : 1;
      line.setAttribute("points", pts.map((p) =>
        ((p.at - start) * 900 / history.window_seconds).toFixed(1) + "," + (98 - (p[key] / top) * 94).toFixed(1)).join(" "));
      svg.append(line);
      return el("figure", { class: key === "refusals_per_second" ? "refusals-chart" : "", "data-series": key,
        "data-samples": String(pts.length) }, el("figcaption", { text: summary }), svg);
    });
  }

  async function loadTenant(id) {
    const seq = ++state.seq;
    try {
      const path = "/api/v1/tenants/" + encodeURIComponent(id);
      const [s, history] = await Promise.all([api("GET", path + "/stats"), api("GET", path + "/history")]);
      if (seq !== state.seq) return;
      $("charts").replaceChildren(...charts(history));
      const t = s.tenant;
      const now = performance.now();
      const total = refusedTotal(s);
      const prev = state.prevRefused.get(id);
      const rate = prev && now > prev.at ? Math.max(0, ((total - prev.total) * 1000) / (now - prev.at)) : 0;
      state.prevRefused.set(id, { total, at: now });
      $("tenant-title").textContent = "Tenant " + t.id + (t.name ? " — " + t.name : "");
      $("tenant").dataset.status = t.status;
      const live = [];
      for (const [u, q, label] of RATES) {
        live.push(el("div", { class: "live-rate" }, el("strong", { text: label }), bar(u, s.usage[u], t.quotas[q])));
      }
      const held = el("dl", {});
      for (const [u, q, label] of HELD) held.append(el("dt", { text: label }), el("dd", { text: fmt(s.usage[u]) + " / " + fmt(t.quotas[q]) }));
      held.append(el("dt", { text: "refusals/s" }), el("dd", { class: "refusals", text: rate.toFixed(1) }));
      held.append(el("dt", { text: "refused (lifetime)" }), el("dd", { text: String(total) }));
      held.append(el("dt", { text: "alerts" }), el("dd", {
        text: s.alerts.length ? s.alerts.map((a) => a.level + " " + shortQuota(a.quota) + " " + Math.round(a.utilization) + "%").join(", ") : "none",
      }));
      $("tenant-live").replaceChildren(...live, held);
      const meta = [["id", t.id], ["name", t.name], ["status", t.status], ["description", t.description || "—"],
        ["created", new Date(t.created_at * 1000).toISOString()], ["updated", new Date(t.updated_at * 1000).toISOString()]];
      for (const [k, v] of Object.entries(t.metadata || {})) meta.push(["metadata " + k, v]);
      $("tenant-meta").replaceChildren(...meta.flatMap(([k, v]) => [el("dt", { text: k }), el("dd", { class: "meta-" + k.replace(/\W/g, "-"), text: v })]));
      if (state.role === "admin") {
        const has = $("tenant-actions").querySelector("[data-action]");
        const want = t.status === "active" ? "suspend" : "activate";
        if (!has || has.dataset.action !== want) {
          $("tenant-actions").replaceChildren(...actionButtons(t).filter((b) => b.dataset.action !== "edit"));
          $("tenant-actions").firstChild.dataset.id = t.id;
        }
      }
      quotaForm(t);
      $("tenant-error").textContent = "";
    } catch (e) {
      if (seq !== state.seq) return;
      if (e.status === 401) return signOut(authMessage(e));
      $("tenant-error").textContent = e.status === 404 ? "No tenant " + id + "." : "Update failed: " + e.message;
    }
  }

  // ---- routing and polling ----

  function currentTenant() {
    const m = /^#\/tenant\/(.+)$/.exec(location.hash);
    return m ? decodeURIComponent(m[1]) : null;
  }

  function route() {
    if (!state.token || !state.role) return;
    const id = currentTenant();
    $("overview").hidden = id !== null;
    $("tenant").hidden = id === null;
    if (id !== null) {
      shownTenant = null;
      // Keyboard and screen-reader users land on the page they opened.
      $("tenant-title").focus();
    }
    poll();
  }

  // One update per second, counted from the start of the last one.
  async function poll() {
    clearTimeout(state.timer);
    if (!state.token || !state.role) return;
    const started = performance.now();
    const id = currentTenant();
    await (id === null ? loadOverview() : loadTenant(id));
    // A poll started by an action may overlap the timer's: keep one timer.
    clearTimeout(state.timer);
    const wait = Math.max(100, POLL_MS - (performance.now() - started));
    if (state.token) state.timer = setTimeout(poll, wait);
  }

  function init() {
    $("login-form").addEventListener("submit", (ev) => {
      ev.preventDefault();
      const token = $("token").value.trim();
      if (!token) {
        $("login-error").textContent = "Enter a token.";
        return;
      }
      signIn(token);
    });
    $("signout").addEventListener("click", () => signOut("Signed out."));
    $("filters").addEventListener("submit", (ev) => ev.preventDefault());
    $("filter-id").addEventListener("input", renderOverview);
    $("filter-status").addEventListener("change", renderOverview);
    $("page-size").addEventListener("change", () => {
      state.cursors = [null];
      state.page = 0;
      poll();
    });
    $("prev").addEventListener("click", () => {
      if (state.page > 0) state.page -= 1;
      poll();
    });
    $("next").addEventListener("click", () => {
      if (!state.next) return;
      state.cursors[state.page + 1] = state.next;
      state.page += 1;
      poll();
    });
    $("tenants").tHead.addEventListener("click", (ev) => {
      const th = ev.target.closest("th[data-sort]");
      if (!th) return;
      const key = th.dataset.sort;
      state.sort = { key, dir: state.sort.key === key ? -state.sort.dir : 1 };
      renderOverview();
    });
    $("tenants").tBodies[0].addEventListener("click", (ev) => {
      const b = ev.target.closest("button[data-action]");
      if (!b) return;
      const id = b.closest("tr").dataset.id;
      if (b.dataset.action === "open" || b.dataset.action === "edit") location.hash = "#/tenant/" + encodeURIComponent(id);
      else act(id, b.dataset.action);
    });
    $("tenant-actions").addEventListener("click", (ev) => {
      const b = ev.target.closest("button[data-action]");
      if (b) act(shownTenant, b.dataset.action);
    });
    $("quota-form").addEventListener("submit", saveQuotas);
    window.addEventListener("hashchange", route);
    if (state.token) signIn(state.token);
    else $("token").focus();
  }

  init();
})();
